package atlas

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// shape is how a stream lays its results out.
type shape int

const (
	shapeArray  shape = iota // [r, r, ...]
	shapeLines               // r\nr\n... (any white space between objects)
	shapeLatest              // {"<prb_id>": [r, ...], ...}
)

// Reader streams results. It holds one result at a time, so a file of
// millions of results reads in flat memory.
type Reader struct {
	dec   *json.Decoder
	shape shape
	// inProbe: in shapeLatest, inside one probe's array.
	inProbe bool
	done    bool
	n       int
}

// sniffLen bounds how far NewReader looks ahead to tell the shapes apart.
const sniffLen = 4096

// NewReader reads results from r, uncompressing gzip and bzip2 (told by
// their magic bytes, not a file name) and telling the shape from the first
// bytes. An empty stream is an error: Atlas writes [] for no results.
func NewReader(r io.Reader) (*Reader, error) {
	in, err := uncompress(r)
	if err != nil {
		return nil, fmt.Errorf("reading Atlas results: %w", err)
	}
	s, err := sniff(in)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(in)
	rd := &Reader{dec: dec, shape: s}
	if s != shapeLines {
		if _, err := dec.Token(); err != nil { // the opening [ or {
			return nil, rd.syntax(err)
		}
	}
	return rd, nil
}

// uncompress returns r's content, gunzipped or bunzipped when its magic
// bytes say so.
func uncompress(r io.Reader) (*bufio.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(3)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("the input starts like gzip but is not: %w", err)
		}
		return bufio.NewReaderSize(named{gz, "gzip"}, 64<<10), nil
	case bytes.Equal(magic, []byte("BZh")):
		return bufio.NewReaderSize(named{bzip2.NewReader(br), "bzip2"}, 64<<10), nil
	}
	return br, nil
}

// named says which decompressor failed, so that a broken download is not
// reported as broken JSON.
type named struct {
	r    io.Reader
	name string
}

func (n named) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s data: %w", n.name, err)
	}
	return k, err
}

// sniff tells the shape from the first bytes: a /latest/ object's first key
// is a probe id (all digits), a result's never is.
func sniff(br *bufio.Reader) (shape, error) {
	head, err := br.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading Atlas results: %w", err)
	}
	b := bytes.TrimLeft(head, " \t\r\n")
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a BOM from some editors
	if len(b) == 0 {
		return 0, errors.New("the input is empty: expected Atlas DNS results (a JSON array, one object per line, or a /latest/ object)")
	}
	switch b[0] {
	case '[':
		return shapeArray, nil
	case '{':
		rest := bytes.TrimLeft(b[1:], " \t\r\n")
		if len(rest) > 0 && rest[0] == '}' {
			return shapeLatest, nil // {}: /latest/ of a measurement with no results
		}
		if len(rest) > 2 && rest[0] == '"' {
			end := bytes.IndexByte(rest[1:], '"')
			if end > 0 && allDigits(rest[1:1+end]) {
				return shapeLatest, nil
			}
		}
		return shapeLines, nil
	}
	return 0, fmt.Errorf("the input starts with %q: expected Atlas DNS results (a JSON array, one object per line, or a /latest/ object), plain, gzip or bzip2", clip(b, 16))
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Count is the number of results read so far.
func (r *Reader) Count() int { return r.n }

// Next returns the next result, or io.EOF after the last. A result with a
// field of the wrong JSON type is returned with DecodeErr set; anything
// that is not a JSON object where a result should be, or broken JSON, is
// an error that ends the stream.
func (r *Reader) Next() (*Result, error) {
	if r.done {
		return nil, io.EOF
	}
	for {
		switch r.shape {
		case shapeLines:
			if !r.dec.More() {
				return nil, r.end()
			}
		case shapeArray:
			if !r.dec.More() {
				if _, err := r.dec.Token(); err != nil { // ]
					return nil, r.syntax(err)
				}
				return nil, r.end()
			}
		case shapeLatest:
			if !r.inProbe {
				if !r.dec.More() {
					if _, err := r.dec.Token(); err != nil { // }
						return nil, r.syntax(err)
					}
					return nil, r.end()
				}
				key, err := r.dec.Token()
				if err != nil {
					return nil, r.syntax(err)
				}
				open, err := r.dec.Token()
				if err != nil {
					return nil, r.syntax(err)
				}
				if d, ok := open.(json.Delim); !ok || d != '[' {
					return nil, fmt.Errorf("reading Atlas /latest/ results: the value of probe %v is not an array of results", key)
				}
				r.inProbe = true
			}
			if !r.dec.More() {
				if _, err := r.dec.Token(); err != nil { // ]
					return nil, r.syntax(err)
				}
				r.inProbe = false
				continue
			}
		}
		return r.decode()
	}
}

func (r *Reader) decode() (*Result, error) {
	res := new(Result)
	err := r.dec.Decode(res)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
	case errors.As(err, &te) && te.Field != "":
		res.DecodeErr = fmt.Errorf("field %s holds a JSON %s, not a %s", te.Field, te.Value, te.Type)
	case errors.As(err, &te):
		return nil, fmt.Errorf("reading Atlas results: result %d is a JSON %s, not an object: is this a file of Atlas results?", r.n+1, te.Value)
	default:
		return nil, r.syntax(err)
	}
	r.n++
	if res.Type != "" && res.Type != "dns" {
		return nil, fmt.Errorf("reading Atlas results: result %d is a %q result: catchmap imports DNS measurements only", r.n, res.Type)
	}
	return res, nil
}

// end checks that nothing but white space follows the results.
func (r *Reader) end() error {
	r.done = true
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading Atlas results: data after the end of the %s, near byte %d: give one document per file", r.shapeName(), r.dec.InputOffset())
	}
	return io.EOF
}

func (r *Reader) syntax(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading Atlas results: the input ends in the middle of the %s after %d results: the file is cut short (an interrupted download?)", r.shapeName(), r.n)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("reading Atlas results: bad JSON after %d results, near byte %d of the uncompressed input: %w", r.n, r.dec.InputOffset(), err)
	}
	return fmt.Errorf("reading Atlas results after %d results: %w", r.n, err)
}

func (r *Reader) shapeName() string {
	switch r.shape {
	case shapeArray:
		return "JSON array"
	case shapeLatest:
		return "/latest/ object"
	}
	return "line-delimited results"
}
