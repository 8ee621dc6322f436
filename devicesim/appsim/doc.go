// Package appsim is the firmware side of tuyaflash's simulated chips:
// what runs once a simulated BK72xx or ESP8266 leaves reset into its
// application. A Firmware implements contract C1's App (Boot, Halt,
// Serial): the chip simulators (devicesim/bk7231, devicesim/esp8266) call
// Boot when the chip starts its application and Halt on reset, power-off
// or download mode, and pass the UART through Serial.
//
// # What runs
//
// On every Boot the firmware looks at the flash (Inspect) and plays what
// it finds:
//
//   - a demo image (firmware/demo, contract C4), found by its marker
//     "TUYAFLASH-DEMO-FIRMWARE " and its JSON — OpenBeken, Tasmota or
//     ESPHome, at the version the JSON names;
//   - on ESP8266/ESP8285 a real image, told by the strings its
//     unencrypted code carries: ESPHome by " (esphome v<version>)", the
//     literal tail of its native API's server_info; Tasmota by the
//     "Tasmota/%s" format of its Server header or its default OTA host
//     ota.tasmota.com, the version from an older build's VERSION_MARKER;
//   - on Beken a real OpenBeken build cannot be told from the stock
//     firmware: Beken applications are encrypted with the chip's eFuse key
//     (and CRC-framed), so their content shows nothing. Any intact
//     application that is not a demo image runs as stock;
//   - any other valid application: the stock Tuya firmware, or a firmware
//     the simulator does not know. Like the stock firmware it has no local
//     HTTP API; its Tuya local-protocol port (TCP 6668) accepts connections;
//   - nothing bootable (no intact application, an image for another chip):
//     nothing happens.
//
// The MAC comes from the RF calibration sector on Beken chips (the TLV
// list at 0x1D0000 on BK7231N/M, 0x1E0000 on the others; C8:47:8C:00:00:00
// when it is gone, as on the real chips) and from Config.MAC (the eFuse)
// on ESP chips.
//
// # The network
//
// Each firmware first opens its access point when it has no Wi-Fi
// settings, with its provisioning page, then, once credentials are set and
// they are the virtual network's (Config.Network, contract C3), its
// station: its web server (and ESPHome's native API). Wrong credentials
// never bring the station up.
//
//   - Tasmota: access point named after the host name, tasmota-XXXXXX-NNNN
//     (XXXXXX the last three MAC bytes, NNNN their low 13 bits in
//     decimal), open for 3 minutes, then a restart and again; its page at
//     / and /wi: /wi?s1=&p1=&save= tests the network up to 9 s while the
//     page reloads, then shows "Successful WiFi Connection" with the new
//     address and restarts, or the form with "Connect failed to …";
//     /cm works there without the Referer check. On the network: /cm with
//     Tasmota's Referer gate (SetOption128 0, the default of recent
//     releases: no Referer naming the device's IP or host name, no reply
//     at all), the web password (WebPassword; Basic or user/password),
//     Status 0…11, State, Power, DeviceName, FriendlyName, Hostname,
//     SSId/Password, Template, Module, Backlog (replies go to the log),
//     SetOption128, WebPassword, Restart, Reset; unknown commands answer
//     {"Command":"Unknown"}. Every reply carries "Server: Tasmota/<version>
//     (<hardware>)". With wrong credentials Tasmota logs "Connect failed
//     with AP incorrect password" (or "as AP cannot be reached") and keeps
//     retrying; it opens no access point (its default Wi-Fi tool is
//     WifiConfig 4, retry; the manager starts only without an SSID:
//     support_wifi.ino WifiCheckIp, my_user_config.h WIFI_CONFIG_TOOL).
//   - Tasmota's serial console (ESP8266, 115200 baud): one command per
//     line, echoed as "CMD: <line>", replies logged as Tasmota logs them
//     without an MQTT broker, "RSL: RESULT = {…}", "RSL: STATUS5 = {…}"
//     (xdrv_02_9_mqtt.ino MqttPublishPayload); SSId/Password restart the
//     device after the Backlog has run ("APP: Restarting"), then the boot
//     log says "WIF: Connected" and "HTP: Web server active on <host> with
//     IP address <address>", or "WIF: WifiManager active for 3 minutes".
//     The simulated address carries its port when it is not 80.
//   - OpenBeken: access point named after the long name,
//     OpenBK7231N_XXXXXXXX (MAC bytes 2…5), 5 s after boot; the same web
//     server on the access point and the station: /cfg_wifi and
//     /cfg_wifi_set?ssid=&pass= (reset 3 s later; "No changes detected";
//     web_admin_password_enabled rules the web password), /cm?cmnd= (GET,
//     or POST cmnd=), /api/info, /api/pins (GET and POST), POST /api/cmnd,
//     POST /api/reboot; commands Status [N], State, Power[N], Backlog,
//     ShortName, FriendlyName, SetPinRole, SetPinChannel, SSID1,
//     Password1, restart. Replies are framed as the real firmware frames
//     them: status line "HTTP/1.1 <code> OK" ended by a bare LF, no
//     Content-Length, connection closed after the body.
//   - ESPHome: it tries the network of its YAML (the virtual network when
//     the image holds its name and password, else one it never finds);
//     after ap_timeout it opens "<node> Fallback Hotspot" with the captive
//     portal (/config.json, /wifisave?ssid=&psk= → 302 /?save, saved 250
//     ms later, no restart). On the network: web_server (index, the
//     Private Network Access preflight with the node name and MAC, /events
//     whose first ping carries the config, a "Relay" switch) and the
//     plaintext native API on its own address (HelloResponse with
//     server_info "<node> (esphome v<version>)", DeviceInfoResponse with
//     the MAC, ping, disconnect).
//
// # Addresses
//
// The access point, the station, ESPHome's native API and the stock
// firmware's Tuya port each have a loopback address (Config.APAddr,
// StationAddr, APIAddr, TuyaAddr; default 127.0.0.1 with a port the
// system picks when New runs, kept for the Firmware's life so that the
// chip can name it before the firmware ever runs — contract C2's "net" is
// StationAddr). A real device serves its web server on port 80 and its
// APIs on 6053 and 6668 of one IP; Redirect maps those well-known ports on
// the station's host to the simulator's addresses, for the Dial options of
// postflash and provision.
//
// # Timing
//
// Config.Timing sets every delay; the defaults follow the firmwares:
//
//	Boot          500 ms  reset → firmware running (not documented; assumed)
//	AccessPoint   Tasmota 1 s (support_wifi.ino: the Wi-Fi check runs every
//	              second and starts the manager when no SSID is set);
//	              OpenBeken 5 s (src/user_main.c g_openAP = 5);
//	              ESPHome: see FallbackAP
//	Join          3 s     credentials → on the network (not documented; assumed)
//	Restart       1 s     a restart the firmware decides on (Tasmota's
//	              restart_flag 2, counted down in its loop; assumed);
//	              OpenBeken resets 3 s after /cfg_wifi_set (http_fns.c
//	              RESET_ScheduleModuleReset(3))
//	Retry         20 s    between failed attempts (Tasmota
//	              WIFI_RETRY_OFFSET_SEC)
//	WifiManager   3 min   Tasmota's access point lifetime (Getting-Started.md
//	              "active for only 3 minutes")
//	WifiTest      9 s     Tasmota's test of new credentials (wifi_test_counter = 9)
//	FallbackAP    90 s    ESPHome's ap_timeout (esphome-docs wifi.md, default
//	              raised from 1 min to 90 s in esphome-docs #5639)
//
// Backlog commands run 200 ms apart (Tasmota's SetOption34 default).
// FastTiming gives millisecond delays for tests on real time.
//
// # Settings in flash
//
// All state — Wi-Fi credentials, names, pin roles, template, module — is
// written through Flash.WriteAt to the firmware's own config sector, so a
// reboot, a backup or a new process with the same flash keeps it: on Beken
// OpenBeken's config sector (0x1D1000 on BK7231N/M, 0x1E1000 on the
// others; BK7231GUIFlashTool OBKFlashLayout.cs), on ESP8266 Tasmota's
// SETTINGS_LOCATION, the Arduino EEPROM sector at 0xFB000 of the 1 MiB
// layout (ESPHome's flash preferences live there too). The sector holds
// the simulator's own format (see settings), not the real firmware's; a
// firmware ignores settings another firmware left.
//
// # For chip simulators
//
// Boot, Halt and Serial return at once and never call the Flash on the
// caller's goroutine: the firmware reads the flash when it starts
// (Timing.Boot after Boot) and writes its settings from its own
// goroutines. A settings write queued before a reset is dropped; one
// already under way may land just after Halt, as a write cut by a reset
// may have landed — and if the simulator holds the lock its Flash needs
// while it calls Halt, such a write waits for that lock and lands after
// Halt, so keep that lock out of the call. Serial output the firmware
// produces on its own waits for the next Serial call: poll Serial(nil)
// while the application runs.
//
// Nothing here is shared with tuyaflash's clients (postflash, provision):
// the replies are written from the firmwares' documentation, sources and
// recordings, so that a mistake on one side cannot hide one on the other.
package appsim
