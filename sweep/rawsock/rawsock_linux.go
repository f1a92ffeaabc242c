//go:build linux

package rawsock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Conn is a raw ICMP socket bound to one local IPv4 address: as a sender,
// the source of its echo requests; as a catcher, the destination of the
// echo replies it receives.
type Conn struct {
	ip  *net.IPConn
	pc  *ipv4.PacketConn
	raw syscall.RawConn
	// drops is the kernel's count of packets dropped on this socket's
	// full receive buffer (SO_RXQ_OVFL), as last reported.
	drops atomic.Uint32
	// rcvbuf is the receive buffer the kernel granted.
	rcvbuf int
}

// listen opens a raw ICMP socket bound to addr, letting in only the ICMP
// types accept names (none when it is empty).
func listen(addr netip.Addr, accept ...ipv4.ICMPType) (*Conn, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("raw socket: %s is not an IPv4 address", addr)
	}
	pc, err := net.ListenPacket("ip4:icmp", addr.String())
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("raw socket on %s: %w", addr, ErrNeedPrivilege)
		}
		return nil, fmt.Errorf("raw socket on %s: %w (is the address on this host? the anycast address must be on lo)", addr, err)
	}
	c := &Conn{ip: pc.(*net.IPConn), pc: ipv4.NewPacketConn(pc)}
	if c.raw, err = c.ip.SyscallConn(); err != nil {
		c.Close()
		return nil, err
	}
	// A raw ICMP socket sees every ICMP message to its address; the filter
	// keeps the rest out of its buffer in the kernel.
	var f ipv4.ICMPFilter
	f.SetAll(true)
	for _, t := range accept {
		f.Accept(t)
	}
	if err := c.pc.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("raw socket on %s: ICMP filter: %w", addr, err)
	}
	return c, nil
}

// ListenCatch opens the catching socket for replies to addr, asking for a
// receive buffer of rcvbuf bytes: beyond net.core.rmem_max with
// CAP_NET_ADMIN, else up to it. The kernel reports its drops and receive
// times with every batch.
func ListenCatch(addr netip.Addr, rcvbuf int) (*Conn, error) {
	c, err := listen(addr, ipv4.ICMPTypeEchoReply)
	if err != nil {
		return nil, err
	}
	var serr error
	cerr := c.raw.Control(func(fd uintptr) {
		s := int(fd)
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
		// The kernel reports twice what it keeps for bookkeeping.
		if v, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			c.rcvbuf = v / 2
		}
		if serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	})
	if err := errors.Join(cerr, serr); err != nil {
		c.Close()
		return nil, fmt.Errorf("catching socket on %s: %w", addr, err)
	}
	return c, nil
}

// ListenSend opens a sending socket with source addr. It lets no ICMP in:
// the catching socket receives the replies.
func ListenSend(addr netip.Addr) (*Conn, error) {
	c, err := listen(addr)
	if err != nil {
		return nil, err
	}
	_ = c.ip.SetWriteBuffer(4 << 20)
	return c, nil
}

// ReadBuffer is the receive buffer the kernel granted, in bytes.
func (c *Conn) ReadBuffer() int { return c.rcvbuf }

// Drops is the kernel's count of packets it dropped because the receive
// buffer was full, as of the last batch read.
func (c *Conn) Drops() uint32 { return c.drops.Load() }

// Close closes the socket; a blocked read returns.
func (c *Conn) Close() error { return c.ip.Close() }

// SetReadDeadline bounds the next read.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ip.SetReadDeadline(t) }

// maxPacket is the largest packet read: an MTU's worth.
const maxPacket = 1500

// oobSize holds the two control messages asked for: the drop counter and
// the receive time (a timespec, two 64-bit numbers on 64-bit systems).
var oobSize = unix.CmsgSpace(4) + unix.CmsgSpace(16)

// Reader reads batches of echo replies from a catching socket.
type Reader struct {
	c    *Conn
	ms   []ipv4.Message
	bufs [][]byte
	got  []Reply
}

// NewReader returns a reader of up to batch packets per call.
func (c *Conn) NewReader(batch int) *Reader {
	r := &Reader{c: c, ms: make([]ipv4.Message, batch), bufs: make([][]byte, batch), got: make([]Reply, 0, batch)}
	for i := range r.ms {
		r.bufs[i] = make([]byte, maxPacket)
		r.ms[i].Buffers = [][]byte{r.bufs[i]}
		r.ms[i].OOB = make([]byte, oobSize)
	}
	return r
}

// Read blocks for at least one packet and returns the echo replies among
// what arrived, and how many packets were not echo replies. The replies'
// data is valid until the next Read.
func (r *Reader) Read() (replies []Reply, other int, err error) {
	n, err := r.c.pc.ReadBatch(r.ms, 0)
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	r.got = r.got[:0]
	for i := range n {
		m := &r.ms[i]
		rcv, drops, ok := parseOOB(m.OOB[:m.NN])
		if ok {
			r.c.drops.Store(drops)
		}
		rep, isReply := ParseReply(r.bufs[i][:m.N])
		if !isReply {
			other++
			continue
		}
		rep.Received = now
		if !rcv.IsZero() {
			rep.Received = rcv
		}
		r.got = append(r.got, rep)
	}
	for i := range n {
		r.ms[i].OOB = r.ms[i].OOB[:cap(r.ms[i].OOB)]
	}
	return r.got, other, nil
}

// parseOOB reads the receive time and the drop counter from a batch
// entry's control messages; hasDrops is false when the kernel sent no
// counter (it sends one only once the socket has dropped something).
func parseOOB(b []byte) (rcv time.Time, drops uint32, hasDrops bool) {
	for len(b) >= unix.SizeofCmsghdr {
		l, level, typ := cmsgHeader(b)
		if l < unix.CmsgLen(0) || l > len(b) {
			break
		}
		data := b[unix.CmsgLen(0):l]
		switch {
		case level == unix.SOL_SOCKET && typ == unix.SO_RXQ_OVFL && len(data) >= 4:
			drops, hasDrops = binary.NativeEndian.Uint32(data), true
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && len(data) == 16:
			rcv = time.Unix(int64(binary.NativeEndian.Uint64(data)), int64(binary.NativeEndian.Uint64(data[8:])))
		case level == unix.SOL_SOCKET && typ == unix.SCM_TIMESTAMPNS && len(data) == 8:
			rcv = time.Unix(int64(int32(binary.NativeEndian.Uint32(data))), int64(int32(binary.NativeEndian.Uint32(data[4:]))))
		}
		b = b[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(b)):]
	}
	return rcv, drops, hasDrops
}

// cmsgHeader reads a control message header: its length field is as wide
// as a pointer.
func cmsgHeader(b []byte) (l, level, typ int) {
	if unix.SizeofCmsghdr == 16 {
		return int(binary.NativeEndian.Uint64(b)), int(int32(binary.NativeEndian.Uint32(b[8:]))), int(int32(binary.NativeEndian.Uint32(b[12:])))
	}
	return int(binary.NativeEndian.Uint32(b)), int(int32(binary.NativeEndian.Uint32(b[4:]))), int(int32(binary.NativeEndian.Uint32(b[8:])))
}

// Writer sends batches of echo requests on a sending socket.
type Writer struct {
	c     *Conn
	ms    []ipv4.Message
	bufs  [][]byte
	addrs []net.IPAddr
	n     int
}

// NewWriter returns a writer of up to batch packets per flush.
func (c *Conn) NewWriter(batch int) *Writer {
	w := &Writer{c: c, ms: make([]ipv4.Message, batch), bufs: make([][]byte, batch), addrs: make([]net.IPAddr, batch)}
	for i := range w.ms {
		w.bufs[i] = make([]byte, 0, maxPacket)
		w.addrs[i].IP = make(net.IP, 4)
	}
	return w
}

// Cap is the most packets a flush sends.
func (w *Writer) Cap() int { return len(w.ms) }

// Next returns the buffer of the next packet, empty, for the caller to
// append the packet to and hand back with Add.
func (w *Writer) Next() []byte { return w.bufs[w.n][:0] }

// Add queues packet b (built on Next's buffer) to dst. The writer must not
// be full.
func (w *Writer) Add(dst netip.Addr, b []byte) {
	a4 := dst.As4()
	copy(w.addrs[w.n].IP, a4[:])
	w.bufs[w.n] = b
	w.ms[w.n] = ipv4.Message{Buffers: [][]byte{b}, Addr: &w.addrs[w.n]}
	w.n++
}

// Len is the number of packets queued.
func (w *Writer) Len() int { return w.n }

// Flush sends the queued packets. It returns how many the kernel took
// and how many it refused, with the first refusal's error: a refused
// packet (no route to its address, say) is skipped and the rest still go.
// The queue is empty afterwards.
func (w *Writer) Flush() (sent, refused int, err error) {
	for i := 0; i < w.n; {
		k, werr := w.c.pc.WriteBatch(w.ms[i:w.n], 0)
		// A failed sendmmsg reports -1 sent.
		k = max(k, 0)
		if k == 0 && werr == nil {
			werr = io.ErrShortWrite
		}
		sent += k
		i += k
		if werr != nil {
			if err == nil {
				err = werr
			}
			refused++
			i++
		}
	}
	w.n = 0
	return sent, refused, err
}

// Raw opens raw ICMP sockets: root or CAP_NET_RAW.
type Raw struct{}

// Batch sizes of Raw's sockets: replies per recvmmsg, probes per sendmmsg.
const (
	ReadBatch  = 64
	WriteBatch = 64
)

// Catch implements Opener.
func (Raw) Catch(addr netip.Addr, rcvbuf int) (Catching, error) {
	c, err := ListenCatch(addr, rcvbuf)
	if err != nil {
		return nil, err
	}
	return rawCatching{c, c.NewReader(ReadBatch)}, nil
}

// Send implements Opener.
func (Raw) Send(addr netip.Addr) (Sending, error) {
	c, err := ListenSend(addr)
	if err != nil {
		return nil, err
	}
	return rawSending{c, c.NewWriter(WriteBatch)}, nil
}

type rawCatching struct {
	*Conn
	*Reader
}

type rawSending struct {
	*Conn
	*Writer
}
