package spec

import (
	"fmt"
	"net/textproto"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseRequestHeaders reads "Name: value" lines into a header. It refuses
// what net/http would refuse late or send mangled: an empty or invalid
// name, or a value with control characters (a CR or LF would split the
// request).
func ParseRequestHeaders(lines []string) (textproto.MIMEHeader, error) {
	h := make(textproto.MIMEHeader, len(lines))
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("request header %q: write it as \"Name: value\"", l)
		case strings.IndexFunc(name, notTokenRune) >= 0:
			return nil, fmt.Errorf("request header %q: name %q may hold only letters, digits and !#$%%&'*+-.^_`|~", l, name)
		case strings.IndexFunc(value, isControlNotTab) >= 0:
			return nil, fmt.Errorf("request header %q: the value has a control character", l)
		case transportHeaders[textproto.CanonicalMIMEHeaderKey(name)]:
			return nil, fmt.Errorf("request header %q: %s is set by the HTTP client itself; "+
				"to change Host, put the name in the target URL and the address in connect-to", l, name)
		}
		h.Add(name, value)
	}
	return h, nil
}

// transportHeaders are the request headers net/http writes itself (and
// drops or duplicates when given) or that HTTP/2 forbids.
var transportHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true, "Te": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Upgrade": true,
}

// notTokenRune reports whether r may not appear in a header name (RFC 9110
// token).
func notTokenRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return r >= utf8.RuneSelf || !strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func isControlNotTab(r rune) bool { return r != '\t' && unicode.IsControl(r) }
