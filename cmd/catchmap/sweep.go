package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/catchmap/catchmap/probe/agent"
	"github.com/catchmap/catchmap/sweep/control"
	"github.com/catchmap/catchmap/sweep/driver"
)

// sweepCmd drives sweeps: echo requests from the anycast address to a
// hitlist, the replies caught wherever BGP delivers them.
type sweepCmd struct {
	Run sweepRunCmd `cmd:"" help:"Run a sweep: the --from sites send to every /24 of the hitlist from the anycast address, every catcher catches what BGP brings it; prints each /24's catchment."`
}

type sweepRunCmd struct {
	hitlistFlags `embed:""`
	Hitlist      string        `help:"The hitlist: an address or prefix per line, or an ISI hitlist (plain, gzip, bzip2 or xz). Checked whole before anything is sent." required:"" type:"path" placeholder:"FILE"`
	Catcher      []string      `help:"A site's catcher: the URL of its catchmap catch --listen, e.g. http://10.0.0.5:8100. Give every site of the anycast service." required:"" placeholder:"URL"`
	From         []string      `help:"Sending sites (their catch --site); the hitlist is split among them so that each /24 is probed once." required:"" placeholder:"SITE"`
	Token        agent.Token   `help:"The catchers' token. Prefer the environment variable: flags show in ps." env:"CATCHMAP_CATCH_TOKEN" placeholder:"TOKEN"`
	Rate         int           `help:"Packets per second at each sending site, 1000 by default (each catcher caps it with its --max-rate)." default:"1000" placeholder:"PPS"`
	Cooldown     time.Duration `help:"How long after the last send a reply still counts (10s by default); a /24 without one by then is unresponsive." default:"10s" placeholder:"DURATION"`
	Contact      string        `help:"Contact string carried in every probe: who sweeps and how to opt out, e.g. 'sweeps@example.net https://example.net/sweeps' (printable ASCII, at most 128 bytes)." required:""`
	Format       string        `help:"Output format: ndjson or csv." enum:"ndjson,csv" default:"ndjson"`
	Output       string        `help:"Write the catchment to FILE instead of stdout." short:"o" type:"path" placeholder:"FILE"`
	Summary      string        `help:"Also write the sweep's counts to FILE as JSON." type:"path" placeholder:"FILE"`
}

func (c *sweepRunCmd) Run(e *env) error {
	if c.Token == "" {
		return usageErrorf("sweep run: no token: set CATCHMAP_CATCH_TOKEN (or --token) to the catchers' token")
	}
	l, err := c.read(c.Hitlist)
	if err != nil {
		return err
	}
	var cs []*control.Client
	hc := &http.Client{}
	for _, u := range c.Catcher {
		cs = append(cs, control.NewClient(u, c.Token.Reveal(), hc))
	}
	res, err := driver.Run(e.ctx, e.log, driver.Options{Catchers: cs, From: c.From, Rate: c.Rate, Cooldown: c.Cooldown,
		Contact: c.Contact, Targets: l.Targets})
	if errors.Is(err, driver.ErrInput) {
		return usageErrorf("sweep run: %v (nothing was sent)", err)
	}
	if err != nil {
		return fmt.Errorf("sweep run: %w", err)
	}
	if err := c.write(e.stdout, res.Rows); err != nil {
		return err
	}
	fmt.Fprint(e.stderr, res.Summary.Text())
	if c.Summary != "" {
		b, err := json.MarshalIndent(res.Summary, "", "  ")
		if err == nil {
			err = os.WriteFile(c.Summary, append(b, '\n'), 0o644)
		}
		if err != nil {
			return fmt.Errorf("sweep run: --summary: %w", err)
		}
	}
	for i, st := range res.Summary.Sites {
		if st.Targets > 0 && st.State != control.StateSent {
			return &exitError{code: exitFail, msg: fmt.Sprintf("sweep run: site %s did not send its whole share (%s: %s)", res.Summary.SiteNames[i], st.State, st.Error)}
		}
	}
	return nil
}

func (c *sweepRunCmd) write(stdout io.Writer, rows []driver.Row) error {
	write := driver.WriteNDJSON
	if c.Format == "csv" {
		write = driver.WriteCSV
	}
	if c.Output == "" {
		return write(stdout, rows)
	}
	f, err := os.Create(c.Output)
	if err != nil {
		return fmt.Errorf("sweep run: %w", err)
	}
	err = write(f, rows)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sweep run: writing the catchment to %s: %w", c.Output, err)
	}
	return nil
}
