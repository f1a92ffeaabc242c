// Package termtext makes text from the network safe to print on a
// terminal: a site code, an identity or a probe's name could carry escape
// sequences that rewrite the operator's screen, or bidi controls that make
// it lie.
package termtext

import (
	"strconv"
	"strings"
	"unicode"
)

// Printable escapes, Go-style (\x1b, \u202e, \t), every rune a terminal
// would act on rather than show: C0 and C1 controls, tabs and newlines,
// bidi and other format controls. Ordinary text, non-ASCII included, is
// left alone.
func Printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
