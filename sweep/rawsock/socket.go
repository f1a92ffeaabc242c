package rawsock

import "net/netip"

// Catching is a socket the replies to one address arrive on.
type Catching interface {
	// Read blocks for a batch: the echo replies and a count of packets
	// that were not echo replies.
	Read() ([]Reply, int, error)
	// Drops is the kernel's count of packets dropped on the socket's
	// full receive buffer.
	Drops() uint32
	// ReadBuffer is the receive buffer granted, in bytes.
	ReadBuffer() int
	Close() error
}

// Sending is a socket for echo requests from one address, sent in
// batches: append a packet to Next's buffer, Add it, Flush the batch.
type Sending interface {
	Next() []byte
	Add(dst netip.Addr, b []byte)
	Len() int
	Cap() int
	Flush() (sent, refused int, err error)
	Close() error
}

// Opener opens the sockets of a site: Raw, or a test's fakes.
type Opener interface {
	Catch(addr netip.Addr, rcvbuf int) (Catching, error)
	Send(addr netip.Addr) (Sending, error)
}
