package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	gapi "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	glog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/server"

	"github.com/catchmap/catchmap/api"
)

// ListenerConfig says whom the listener peers with.
type ListenerConfig struct {
	Peer     netip.Addr // the neighbour's address
	PeerAS   uint32
	LocalAS  uint32     // catchmap's ASN
	RouterID netip.Addr // catchmap's BGP identifier (IPv4)
	// ListenAddress is the address to accept sessions on; invalid (zero):
	// every address.
	ListenAddress netip.Addr
	ListenPort    int // required: 179 needs root
	// Active also connects to the peer, on PeerPort (179 when 0); passive
	// only waits for the peer to connect.
	Active   bool
	PeerPort int
}

// Validate checks the fields that gobgp would otherwise reject with a less
// helpful message.
func (c ListenerConfig) Validate() error {
	switch {
	case !c.Peer.IsValid():
		return errors.New("bgp listener: no peer address")
	case c.PeerAS == 0 || c.LocalAS == 0:
		return errors.New("bgp listener: peer and local ASNs must be set (1-4294967295)")
	case !c.RouterID.Is4():
		return errors.New("bgp listener: the router id must be an IPv4 address")
	case c.ListenPort < 1 || c.ListenPort > 65535:
		return fmt.Errorf("bgp listener: listen port %d is out of range 1-65535", c.ListenPort)
	case c.PeerPort < 0 || c.PeerPort > 65535:
		return fmt.Errorf("bgp listener: peer port %d is out of range 0-65535", c.PeerPort)
	}
	return nil
}

// Listener keeps a BGP session with one peer (gobgp's server) and turns
// the announcements and withdrawals it receives for the anycast prefixes
// into events. It sends nothing to the peer.
type Listener struct {
	log      *slog.Logger
	cfg      ListenerConfig
	prefixes func(context.Context) (*Prefixes, error)
	sink     func(context.Context, []api.Event) error
	now      func() time.Time
}

// NewListener returns a listener for cfg. prefixes is asked, for each batch
// of updates, which prefixes to record (the plan can change while it runs);
// sink stores the events (store.Events.AddEvents).
func NewListener(log *slog.Logger, cfg ListenerConfig, prefixes func(context.Context) (*Prefixes, error), sink func(context.Context, []api.Event) error) *Listener {
	return &Listener{log: log, cfg: cfg, prefixes: prefixes, sink: sink, now: time.Now}
}

// item is one thing the watch hands to Run's loop: a batch of paths, or a
// session going down.
type item struct {
	paths    []*gapi.Path
	peerDown string // neighbour address
}

// Run starts the BGP speaker and records events until ctx ends; then it
// closes the session and returns nil. It returns an error when the speaker
// cannot start (port in use, no permission for port 179...).
//
// gobgp v3's BgpServer.Serve loop cannot be stopped: after Run returns, one
// idle goroutine stays blocked in it, with no socket or session open.
func (l *Listener) Run(ctx context.Context) error {
	if err := l.cfg.Validate(); err != nil {
		return err
	}
	s := server.NewBgpServer(server.LoggerOption(gobgpLogger{l.log}))
	go s.Serve()
	g := &gapi.Global{Asn: l.cfg.LocalAS, RouterId: l.cfg.RouterID.String(), ListenPort: int32(l.cfg.ListenPort)}
	if l.cfg.ListenAddress.IsValid() {
		g.ListenAddresses = []string{l.cfg.ListenAddress.String()}
	}
	if err := s.StartBgp(ctx, &gapi.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("starting the BGP listener on port %d: %w (port 179 needs root: set bgp.listen_port above 1023 and have the peer connect there)", l.cfg.ListenPort, err)
	}
	// StopBgp closes the sessions and listeners, and waits for them.
	defer s.Stop()

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan item, 64)
	send := func(it item) {
		select {
		case items <- it:
		case <-wctx.Done():
		}
	}
	err := s.WatchEvent(wctx, &gapi.WatchEventRequest{
		Peer: &gapi.WatchEventRequest_Peer{},
		Table: &gapi.WatchEventRequest_Table{Filters: []*gapi.WatchEventRequest_Table_Filter{
			{Type: gapi.WatchEventRequest_Table_Filter_ADJIN},
		}},
	}, func(r *gapi.WatchEventResponse) {
		switch ev := r.Event.(type) {
		case *gapi.WatchEventResponse_Table:
			if len(ev.Table.Paths) > 0 {
				send(item{paths: ev.Table.Paths})
			}
		case *gapi.WatchEventResponse_Peer:
			st := ev.Peer.GetPeer().GetState()
			if ev.Peer.Type == gapi.WatchEventResponse_PeerEvent_STATE && st != nil && st.SessionState != gapi.PeerState_ESTABLISHED {
				send(item{peerDown: st.NeighborAddress})
			}
		}
	})
	if err != nil {
		return fmt.Errorf("watching BGP updates: %w", err)
	}
	peer := &gapi.Peer{
		Conf:      &gapi.PeerConf{NeighborAddress: l.cfg.Peer.String(), PeerAsn: l.cfg.PeerAS},
		Transport: &gapi.Transport{PassiveMode: !l.cfg.Active, RemotePort: uint32(l.cfg.PeerPort)},
		AfiSafis: []*gapi.AfiSafi{
			{Config: &gapi.AfiSafiConfig{Family: &gapi.Family{Afi: gapi.Family_AFI_IP, Safi: gapi.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &gapi.AfiSafiConfig{Family: &gapi.Family{Afi: gapi.Family_AFI_IP6, Safi: gapi.Family_SAFI_UNICAST}, Enabled: true}},
		},
	}
	if err := s.AddPeer(ctx, &gapi.AddPeerRequest{Peer: peer}); err != nil {
		return fmt.Errorf("adding BGP peer %s AS%d: %w", l.cfg.Peer, l.cfg.PeerAS, err)
	}
	l.log.Info("BGP listener up", "peer", l.cfg.Peer, "peer_as", l.cfg.PeerAS, "local_as", l.cfg.LocalAS,
		"port", l.cfg.ListenPort, "active", l.cfg.Active)

	// announced remembers, per peer, the routes it announced and has not
	// withdrawn, with the anycast prefixes they matched: when the session
	// drops they are gone without a withdrawal message, and that is an
	// event too.
	announced := map[string]map[netip.Prefix][]string{}
	for {
		var it item
		select {
		case <-ctx.Done():
			l.log.Info("BGP listener stopping")
			return nil
		case it = <-items:
		}
		var es []api.Event
		if it.peerDown != "" {
			es = l.sessionLost(it.peerDown, announced)
		} else {
			es = l.pathEvents(ctx, it.paths, announced)
		}
		if len(es) == 0 {
			continue
		}
		if err := l.sink(ctx, es); err != nil {
			// The session keeps going: a store hiccup loses these events
			// (logged), not the next ones.
			l.log.Error("storing BGP events failed: they are lost", "events", len(es), "err", err)
			continue
		}
		l.log.Debug("BGP events stored", "events", len(es))
	}
}

// pathEvents turns received paths into events for the current prefixes.
func (l *Listener) pathEvents(ctx context.Context, paths []*gapi.Path, announced map[string]map[netip.Prefix][]string) []api.Event {
	ps, err := l.prefixes(ctx)
	if err != nil {
		l.log.Error("reading the anycast prefixes failed: BGP updates not recorded", "err", err)
		return nil
	}
	var es []api.Event
	for _, p := range paths {
		nlri, err := apiutil.GetNativeNlri(p)
		if err != nil {
			continue
		}
		prefix, ok := routePrefix(nlri)
		if !ok {
			continue
		}
		// gobgp's path age has whole seconds only: two updates within a
		// second would get one time and, being otherwise equal, one ID.
		u := update{time: l.now(), peer: p.NeighborIp, prefix: prefix, kind: api.EventAnnounce, source: api.SourceBGP}
		if a, err := netip.ParseAddr(p.NeighborIp); err == nil {
			u.peer = a.Unmap().String()
		}
		if p.IsWithdraw {
			u.kind = api.EventWithdraw
		} else if attrs, err := apiutil.GetNativePathAttributes(p); err == nil {
			u.path = asPath(attrs)
		}
		before := len(es)
		_, _ = ps.events(u, func(e api.Event) error { es = append(es, e); return nil })
		if len(es) == before {
			continue
		}
		m := announced[u.peer]
		if m == nil {
			m = map[netip.Prefix][]string{}
			announced[u.peer] = m
		}
		if p.IsWithdraw {
			delete(m, prefix)
		} else {
			m[prefix] = ps.Match(prefix)
		}
	}
	return es
}

// sessionLost withdraws every route the peer had announced.
func (l *Listener) sessionLost(peer string, announced map[string]map[netip.Prefix][]string) []api.Event {
	if a, err := netip.ParseAddr(peer); err == nil {
		peer = a.Unmap().String()
	}
	m := announced[peer]
	delete(announced, peer)
	if len(m) > 0 {
		l.log.Warn("BGP session lost: its routes count as withdrawn", "peer", peer, "routes", len(m))
	}
	var es []api.Event
	now := l.now()
	for prefix, names := range m {
		for _, name := range names {
			e := api.Event{Time: now.UTC(), Prefix: name, Kind: api.EventWithdraw, Peer: peer, Source: api.SourceBGP}
			e.ID = e.DerivedID(prefix)
			es = append(es, e)
		}
	}
	return es
}

// gobgpLogger sends gobgp's logs to slog. gobgp logs routine session
// chatter at info; it goes to debug here, warnings and errors stay.
type gobgpLogger struct{ log *slog.Logger }

func (g gobgpLogger) emit(level slog.Level, msg string, f glog.Fields) {
	if !g.log.Enabled(context.Background(), level) {
		return
	}
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	g.log.Log(context.Background(), level, "gobgp: "+msg, args...)
}

func (g gobgpLogger) Panic(msg string, f glog.Fields) {
	g.emit(slog.LevelError, msg, f)
	panic("gobgp: " + msg)
}
func (g gobgpLogger) Fatal(msg string, f glog.Fields) {
	// gobgp calls Fatal where it gives up; exiting the aggregator for it
	// would be worse than logging it.
	g.emit(slog.LevelError, msg, f)
}
func (g gobgpLogger) Error(msg string, f glog.Fields) { g.emit(slog.LevelError, msg, f) }
func (g gobgpLogger) Warn(msg string, f glog.Fields)  { g.emit(slog.LevelWarn, msg, f) }
func (g gobgpLogger) Info(msg string, f glog.Fields)  { g.emit(slog.LevelDebug, msg, f) }
func (g gobgpLogger) Debug(msg string, f glog.Fields) { g.emit(slog.LevelDebug-4, msg, f) }
func (g gobgpLogger) SetLevel(glog.LogLevel)          {}
func (g gobgpLogger) GetLevel() glog.LogLevel         { return glog.DebugLevel }
