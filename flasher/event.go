package flasher

// EventKind classifies a notification to the user.
type EventKind int

// Event kinds.
const (
	// Note is progress worth a line in verbose output.
	Note EventKind = iota
	// Action asks the user to do something now (power-cycle, hold a pin).
	Action
	// Warning reports a degraded but working situation (baud fallback,
	// unknown bootloader).
	Warning
)

// Event is an output-only notification from a protocol package to the
// front end. Protocol packages never print; they emit events.
type Event struct {
	Kind    EventKind
	Message string
}

// Notify is a sink for events; a nil Notify discards them.
type Notify func(Event)

// Emit sends an event if n is not nil.
func (n Notify) Emit(kind EventKind, msg string) {
	if n != nil {
		n(Event{Kind: kind, Message: msg})
	}
}
