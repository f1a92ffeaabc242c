// Package dnstxt escapes TXT character-strings the way miekg/dns holds
// them (zone-file escaping), for code that builds TXT records from raw
// bytes: a responder answering with an identity, an importer rebuilding an
// answer. probe reads them back byte for byte.
package dnstxt

import (
	"fmt"
	"strings"
)

// Escape writes s in zone-file escaping: \" and \\ for quote and
// backslash, \DDD for bytes outside printable ASCII, so that miekg/dns
// packs every byte as given.
func Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
