package postflash

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// challenge is one scheme of a WWW-Authenticate header.
type challenge struct {
	scheme string // lower case: "basic", "digest"
	params map[string]string
}

// parseChallenges reads WWW-Authenticate values (RFC 9110 §11.6.1): each
// holds one or more challenges, a scheme followed by comma-separated
// name=value parameters whose values may be quoted strings.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, v := range values {
		s := v
		var cur *challenge
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			tok, rest := readToken(s)
			if tok == "" { // stray character
				s = s[1:]
				continue
			}
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "=") && cur != nil {
				val, after := readValue(strings.TrimLeft(rest[1:], " \t"))
				cur.params[strings.ToLower(tok)] = val
				s = after
				continue
			}
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			cur = &out[len(out)-1]
			s = rest
		}
	}
	return out
}

func readToken(s string) (string, string) {
	i := 0
	for i < len(s) && !strings.ContainsRune(" \t,=\"", rune(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

func readValue(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		return readToken(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

func newCnonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// digestAuthorization answers an HTTP Digest challenge (RFC 7616) for one
// request: algorithms MD5, SHA-256 and SHA-512-256, their -sess variants,
// qop "auth" or the RFC 2069 form without qop, and userhash. ESPHome's web
// server asks for Digest when it runs on the Arduino framework.
func digestAuthorization(ch challenge, method, uri, user, password, cnonce string) (string, error) {
	alg := ch.params["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	base, sess := strings.ToUpper(alg), false
	if strings.HasSuffix(base, "-SESS") {
		base, sess = strings.TrimSuffix(base, "-SESS"), true
	}
	var newHash func() hash.Hash
	switch base {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	case "SHA-512-256":
		newHash = sha512.New512_256
	default:
		return "", fmt.Errorf("digest algorithm %q not supported", alg)
	}
	h := func(parts ...string) string {
		x := newHash()
		x.Write([]byte(strings.Join(parts, ":")))
		return hex.EncodeToString(x.Sum(nil))
	}
	realm, nonce := ch.params["realm"], ch.params["nonce"]
	qop := ""
	if q, ok := ch.params["qop"]; ok {
		for _, o := range strings.Split(q, ",") {
			if strings.TrimSpace(o) == "auth" {
				qop = "auth"
			}
		}
		if qop == "" {
			return "", fmt.Errorf("digest qop %q not supported", q)
		}
	}
	const nc = "00000001"
	ha1 := h(user, realm, password)
	if sess {
		ha1 = h(ha1, nonce, cnonce)
	}
	ha2 := h(method, uri)
	var response string
	if qop == "" {
		response = h(ha1, nonce, ha2)
	} else {
		response = h(ha1, nonce, nc, cnonce, qop, ha2)
	}
	name := user
	userhash := strings.EqualFold(ch.params["userhash"], "true")
	if userhash {
		name = h(user, realm)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username=%s, realm=%s, uri=%s, algorithm=%s, nonce=%s`,
		quote(name), quote(realm), quote(uri), alg, quote(nonce))
	if qop != "" {
		fmt.Fprintf(&b, `, nc=%s, cnonce=%s, qop=%s`, nc, quote(cnonce), qop)
	}
	fmt.Fprintf(&b, `, response=%s`, quote(response))
	if o, ok := ch.params["opaque"]; ok {
		fmt.Fprintf(&b, `, opaque=%s`, quote(o))
	}
	if userhash {
		b.WriteString(`, userhash=true`)
	}
	return b.String(), nil
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
