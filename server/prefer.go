package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// preferences are what a request asked for in its Prefer headers (RFC
// 7240). A server must ignore preferences it does not understand and
// values it cannot use, so a malformed one is dropped, not an error.
type preferences struct {
	async bool          // respond-async: answer at once, 202 if not cached
	wait  time.Duration // wait=N seconds: bound on a blocking wait; 0 if absent
}

// maxPreferBytes bounds the Prefer header text parsed; the server's header
// limit bounds it already, this keeps the parser's work small regardless.
const maxPreferBytes = 4 << 10

// parsePrefer reads every Prefer header of h. A preference is a token, an
// optional "=" value (a token or a quoted string), and parameters after
// ";" which no preference used here has; preferences are separated by
// commas, within a header and across headers. The first occurrence of a
// preference wins (RFC 7240 section 2).
func parsePrefer(h http.Header) preferences {
	var p preferences
	seen := map[string]bool{}
	budget := maxPreferBytes
	for _, line := range h.Values("Prefer") {
		if len(line) > budget {
			line = line[:budget]
		}
		budget -= len(line)
		for _, item := range splitPreferences(line) {
			name, value := item, ""
			if i := strings.IndexByte(item, ';'); i >= 0 {
				name = item[:i] // parameters: none is used
			}
			if i := strings.IndexByte(name, '='); i >= 0 {
				name, value = name[:i], unquote(strings.TrimSpace(name[i+1:]))
			}
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			switch name {
			case "respond-async":
				p.async = true
			case "wait":
				// delta-seconds: digits only, no sign, no fraction.
				if n, err := strconv.ParseUint(value, 10, 32); err == nil && value != "" && value[0] != '+' {
					p.wait = time.Duration(n) * time.Second
				}
			}
		}
	}
	return p
}

// splitPreferences splits a header value at commas outside quoted strings.
func splitPreferences(s string) []string {
	var out []string
	start, quoted, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquote removes a quoted string's quotes and escapes; a token is
// returned as it is, and a broken quoted string as empty.
func unquote(s string) string {
	if len(s) == 0 || s[0] != '"' {
		return s
	}
	if len(s) < 2 || s[len(s)-1] != '"' {
		return ""
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		if s[i] == '\\' && i+1 < len(s)-1 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
