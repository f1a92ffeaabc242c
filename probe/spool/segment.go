package spool

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// A segment file, <seq>.seg with seq in 16 hex digits, is:
//
//	magic    "CMSPOOL1"
//	frame*   length   uint32, little-endian: of the payload
//	         sum      uint32: CRC-32C of the payload
//	         check    uint32: CRC-32C of length and sum
//	         payload  the record, length bytes
//
// Frames are only ever appended. check tells a frame header from garbage
// without touching a payload, so that past damage the reader slides on one
// byte at a time, cheaply, to the next frame; a zeroed region (what some
// filesystems show after a crash) fails it too.
//
// An older agent wrote one file per Put, <seq>-<count>.ndjson, each line a
// record (legacy below): such files are read, never written.
const (
	segMagic     = "CMSPOOL1"
	frameHeader  = 12
	segSuffix    = ".seg"
	legacySuffix = ".ndjson"
)

// MaxRecordBytes bounds one record, so that a damaged length cannot make a
// reader allocate without bound.
const MaxRecordBytes = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends rec's frame to buf.
func appendFrame(buf, rec []byte) []byte {
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(rec, castagnoli))
	binary.LittleEndian.PutUint32(h[8:], crc32.Checksum(h[:8], castagnoli))
	return append(append(buf, h[:]...), rec...)
}

// frameAt returns the payload of the whole, intact frame at the start of
// data; ok is false when there is none.
func frameAt(data []byte) (payload []byte, ok bool) {
	if len(data) < frameHeader || crc32.Checksum(data[:8], castagnoli) != binary.LittleEndian.Uint32(data[8:]) {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(data)
	if n > MaxRecordBytes || uint64(n) > uint64(len(data)-frameHeader) {
		return nil, false
	}
	payload = data[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(data[4:]) {
		return nil, false
	}
	return payload, true
}

// decodeFrames reads up to max records from data, which starts at a frame
// and ends where the segment's writes ended. It returns the records (they
// alias data), how many bytes of data they took, with the damage among
// them, which is where the next read starts, and how many damaged spans it
// skipped: a torn last frame, garbage, a frame whose checksum fails.
func decodeFrames(data []byte, max int) (recs [][]byte, used, bad int) {
	for used < len(data) && len(recs) < max {
		if p, ok := frameAt(data[used:]); ok {
			recs = append(recs, p)
			used += frameHeader + len(p)
			continue
		}
		bad++
		for used++; used < len(data); used++ {
			if _, ok := frameAt(data[used:]); ok {
				break
			}
		}
	}
	return recs, used, bad
}

// decodeLines reads up to max records from data, a legacy segment from a
// line's start: each non-blank line is a record. A last line without its
// newline was torn by a crash and counts as damaged.
func decodeLines(data []byte, max int) (recs [][]byte, used, bad int) {
	for used < len(data) && len(recs) < max {
		line, _, complete := bytes.Cut(data[used:], []byte{'\n'})
		if !complete {
			return recs, len(data), bad + 1
		}
		used += len(line) + 1
		if len(bytes.TrimSpace(line)) > 0 {
			recs = append(recs, line)
		}
	}
	return recs, used, bad
}

// segmentStart is where the first frame of a segment is: past its magic,
// or at 0 when the magic is damaged, so that the frames after it still read.
func segmentStart(data []byte) int64 {
	if bytes.HasPrefix(data, []byte(segMagic)) {
		return int64(len(segMagic))
	}
	return 0
}

func segName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segSuffix) }

// parseName reads a segment's file name: its seq, whether it is legacy and,
// for legacy, the record count the name carries. ok is false for any other
// file.
func parseName(name string) (seq uint64, legacy bool, count int, ok bool) {
	base, found := strings.CutSuffix(name, segSuffix)
	if !found {
		if base, found = strings.CutSuffix(name, legacySuffix); !found {
			return 0, false, 0, false
		}
		var countText string
		if base, countText, found = strings.Cut(base, "-"); !found {
			return 0, false, 0, false
		}
		var err error
		if count, err = strconv.Atoi(countText); err != nil || count < 0 {
			return 0, false, 0, false
		}
		legacy = true
	}
	if len(base) != 16 {
		return 0, false, 0, false
	}
	seq, err := strconv.ParseUint(base, 16, 64)
	return seq, legacy, count, err == nil
}
