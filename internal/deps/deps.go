// Package deps pins the project's dependencies while the packages that use them are being written. TEMPORARY: delete before landing.
package deps

import (
	_ "github.com/alecthomas/kong"
	_ "github.com/cenkalti/backoff/v5"
	_ "github.com/google/uuid"
	_ "github.com/mattn/go-isatty"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/maxmind/mmdbwriter"
	_ "github.com/miekg/dns"
	_ "github.com/oschwald/geoip2-golang"
	_ "github.com/paulmach/orb/geojson"
	_ "github.com/prometheus-community/pro-bing"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/uber/h3-go/v4"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/time/rate"
)
