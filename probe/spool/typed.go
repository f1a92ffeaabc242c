package spool

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/catchmap/catchmap/internal/jsonx"
	"github.com/catchmap/catchmap/probe/result"
)

// Codec turns records of type T into spool records and back.
type Codec[T any] interface {
	Encode(rec *T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// JSON is the Codec of T as one JSON document per record, which keeps the
// quarantine file, and the older agent's spool, NDJSON.
type JSON[T any] struct {
	// Check, when set, refuses a record that decodes but makes no sense.
	Check func(*T) error
}

// Encode marshals rec, as catchmap writes JSON everywhere (jsonx).
func (c JSON[T]) Encode(rec *T) ([]byte, error) { return jsonx.Marshal(rec) }

// Decode unmarshals data and checks the record.
func (c JSON[T]) Decode(data []byte) (T, error) {
	var rec T
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, err
	}
	if c.Check != nil {
		return rec, c.Check(&rec)
	}
	return rec, nil
}

// Typed is a spool of records of type T. Len, Bytes, DiskBytes and Close are
// the spool's; Put, Peek, Ack and Quarantine take and give records of T.
type Typed[T any] struct {
	*Spool
	codec Codec[T]
}

// NewTyped puts records of type T, through c, on s.
func NewTyped[T any](s *Spool, c Codec[T]) *Typed[T] { return &Typed[T]{Spool: s, codec: c} }

// Results is the probe agent's spool of result records, in the record's
// own JSON encoding and decoding.
func Results(s *Spool) *Typed[result.Record] { return NewTyped[result.Record](s, recordCodec{}) }

type recordCodec struct{}

func (recordCodec) Encode(r *result.Record) ([]byte, error) { return r.AppendJSON(nil) }

func (recordCodec) Decode(data []byte) (result.Record, error) {
	r, err := result.DecodeRecord(data)
	if err != nil {
		return result.Record{}, err
	}
	if r.ID == "" {
		return result.Record{}, errors.New("result record without an id")
	}
	return *r, nil
}

// TypedBatch is a Batch of records of T.
type TypedBatch[T any] struct {
	Records []T
	raw     *Batch
}

// encode encodes recs. A record that cannot be encoded is left out, so that
// it cannot take its neighbours with it, and is dropped, counted, and named
// in err.
func (t *Typed[T]) encode(recs []T) (raw [][]byte, err error) {
	raw = make([][]byte, 0, len(recs))
	for i := range recs {
		data, eerr := t.codec.Encode(&recs[i])
		if eerr != nil {
			if err == nil {
				err = fmt.Errorf("spool: record %d of %d cannot be encoded: %w", i+1, len(recs), eerr)
			}
			continue
		}
		raw = append(raw, data)
	}
	if failed := len(recs) - len(raw); failed > 0 {
		t.countDropped(dropUnencodable, failed, 0, err)
	}
	return raw, err
}

// Put stores recs durably, as Spool.Put does. A record that cannot be
// encoded is dropped, counted, and named in the error; the others are
// stored.
func (t *Typed[T]) Put(recs []T) error {
	raw, err := t.encode(recs)
	return errors.Join(err, t.Spool.Put(raw))
}

// Peek returns the oldest records, as Spool.Peek does. A record that does
// not decode is left out, and counted as damaged when the batch is acked.
func (t *Typed[T]) Peek(limit int) (*TypedBatch[T], error) {
	b, err := t.Spool.Peek(limit)
	if b == nil || err != nil {
		return nil, err
	}
	tb := &TypedBatch[T]{Records: make([]T, 0, len(b.Records)), raw: b}
	for _, data := range b.Records {
		rec, err := t.codec.Decode(data)
		if err != nil {
			b.bad++
			continue
		}
		tb.Records = append(tb.Records, rec)
	}
	return tb, nil
}

// Ack tells the spool that the consumer has b's records.
func (t *Typed[T]) Ack(b *TypedBatch[T]) error {
	if b == nil {
		return nil
	}
	return t.Spool.Ack(b.raw)
}

// Quarantine appends recs to the quarantine file, as Spool.Quarantine does.
func (t *Typed[T]) Quarantine(recs []T, reason string) error {
	raw, err := t.encode(recs)
	return errors.Join(err, t.Spool.Quarantine(raw, reason))
}
