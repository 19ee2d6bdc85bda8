package transports

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fake is a Transport that records how it was made.
type fake struct {
	name string
	cfg  Config
	s    Settings
}

func (f *fake) Name() string                                     { return f.name }
func (f *fake) Config() Config                                   { return f.cfg }
func (f *fake) Listen(string, string, Handler) (Listener, error) { return nil, errors.ErrUnsupported }
func (f *fake) Dial(context.Context, string, string, Handler) (Conn, error) {
	return nil, errors.ErrUnsupported
}
func (f *fake) Stats() Stats                   { return Stats{} }
func (f *fake) Shutdown(context.Context) error { return nil }
func (f *fake) Close() error                   { return nil }

func registerFake(name string, pref int, probeErr error) {
	if _, ok := Lookup(name); ok {
		return
	}
	Register(Driver{
		Name:       name,
		Summary:    "a test transport",
		Preference: pref,
		Options: []Option{
			{Key: "entries", Kind: Int, Default: "64", Help: "ring entries"},
			{Key: "mode", Kind: Enum, Default: "level", Values: []string{"level", "edge"}, Help: "trigger"},
		},
		Probe: func() (string, error) { return "fine", probeErr },
		New: func(cfg Config, s Settings) (Transport, error) {
			return &fake{name: name, cfg: cfg, s: s}, nil
		},
	})
}

func init() {
	registerFake("fakea", 100, Unsupported("fakea: no such kernel"))
	registerFake("fakeb", 50, nil)
	registerFake("fakec", 10, nil)
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		cfg      Config
		wantName string
		wantCfg  func(*Config)
		entries  int
		mode     string
	}{
		{name: "defaults", spec: "fakeb", wantName: "fakeb", entries: 64, mode: "level"},
		{name: "own keys", spec: "fakeb:entries=8,mode=edge", wantName: "fakeb", entries: 8, mode: "edge"},
		{name: "common keys", spec: "fakec:loops=3,maxwritebuffer=16k,maxreadbuffer=2m,nodelay=false,closetimeout=1s,closelinger=250ms",
			wantName: "fakec", entries: 64, mode: "level",
			wantCfg: func(c *Config) {
				c.Loops, c.MaxWriteBuffer, c.MaxReadBuffer = 3, 16<<10, 2<<20
				c.NoDelay, c.CloseTimeout, c.CloseLinger = Off, time.Second, 250*time.Millisecond
			}},
		{name: "spec wins over cfg", spec: "fakeb:maxwritebuffer=1k", cfg: Config{MaxWriteBuffer: 5000, Loops: 7},
			wantName: "fakeb", entries: 64, mode: "level",
			wantCfg: func(c *Config) { c.MaxWriteBuffer, c.Loops = 1<<10, 7 }},
		{name: "auto skips the unavailable", spec: "auto:loops=2", wantName: "fakeb", entries: 64, mode: "level",
			wantCfg: func(c *Config) { c.Loops = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			tr, err := Open(tt.spec, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := tr.(*fake)
			want := tt.cfg.WithDefaults()
			if tt.wantCfg != nil {
				tt.wantCfg(&want)
			}
			if f.name != tt.wantName {
				t.Errorf("opened %s, want %s", f.name, tt.wantName)
			}
			if d := cmp.Diff(want, f.cfg, cmp.Comparer(func(a, b *slog.Logger) bool { return a == b })); d != "" {
				t.Errorf("Config (-want +got):\n%s", d)
			}
			if got := f.s.Int("entries"); got != tt.entries {
				t.Errorf("entries = %d, want %d", got, tt.entries)
			}
			if got := f.s.String("mode"); got != tt.mode {
				t.Errorf("mode = %q, want %q", got, tt.mode)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		cfg      Config
		contains []string
		is       error
	}{
		{name: "unknown transport", spec: "nosuch", contains: []string{`unknown transport "nosuch"`, "fakeb", "fakec"}},
		{name: "unknown key lists valid ones", spec: "fakeb:entriez=3", contains: []string{`no key "entriez"`, "loops", "maxwritebuffer", "entries", "mode"}},
		{name: "bad value", spec: "fakeb:entries=many", contains: []string{"entries=many", "not a valid int"}},
		{name: "bad enum", spec: "fakeb:mode=both", contains: []string{"mode=both", "level, edge"}},
		{name: "bad common value", spec: "fakeb:closetimeout=soon", contains: []string{"closetimeout=soon", "duration"}},
		{name: "malformed", spec: "fakeb:entries", contains: []string{"not key=value"}},
		{name: "auto takes common keys only", spec: "auto:entries=3", contains: []string{"only the common keys", "loops"}},
		{name: "unavailable", spec: "fakea", contains: []string{"fakea: no such kernel"}, is: errors.ErrUnsupported},
		{name: "negative config", spec: "fakeb", cfg: Config{MaxReadBuffer: -1}, contains: []string{"MaxReadBuffer -1"}},
		{name: "negative loops by spec", spec: "fakeb:loops=-2", contains: []string{"Loops -2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := Open(tt.spec, tt.cfg)
			if err == nil {
				t.Fatalf("Open(%q) = %v, want an error", tt.spec, tr)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not match %v", err, tt.is)
			}
		})
	}
}

func TestAutoLogsItsChoice(t *testing.T) {
	var buf bytes.Buffer
	cfg := Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if _, err := Open("auto", cfg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"auto picked fakeb", "fakea: no such kernel"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("log %q does not contain %q", buf.String(), s)
		}
	}
}

func TestRegisterRejects(t *testing.T) {
	ok := Driver{Name: "okname", Probe: func() (string, error) { return "", nil },
		New: func(Config, Settings) (Transport, error) { return nil, nil }}
	tests := []struct {
		name string
		edit func(*Driver)
	}{
		{name: "auto", edit: func(d *Driver) { d.Name = "auto" }},
		{name: "bad name", edit: func(d *Driver) { d.Name = "Bad Name" }},
		{name: "no New", edit: func(d *Driver) { d.New = nil }},
		{name: "no Probe", edit: func(d *Driver) { d.Probe = nil }},
		{name: "duplicate", edit: func(d *Driver) { d.Name = "fakeb" }},
		{name: "bad default", edit: func(d *Driver) { d.Options = []Option{{Key: "n", Kind: Int, Default: "x"}} }},
		{name: "ignores an unknown key", edit: func(d *Driver) { d.Ignores = []string{"entries"} }},
		{name: "shadows a common key", edit: func(d *Driver) { d.Options = []Option{{Key: "loops", Kind: Int, Default: "1"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.edit(&d)
			defer func() {
				if recover() == nil {
					t.Errorf("Register accepted %+v", d)
				}
			}()
			Register(d)
		})
	}
}

func TestStatsAdd(t *testing.T) {
	a := Stats{Accepted: 3, Closed: 1, BytesIn: 10, Wakeups: 4, Events: 10, Extra: map[string]uint64{"sqes": 2}}
	b := Stats{Dialed: 2, Closed: 2, BytesIn: 5, Wakeups: 1, Events: 0, Extra: map[string]uint64{"sqes": 1, "cqes": 7}}
	got := a.Add(b)
	want := Stats{Accepted: 3, Dialed: 2, Closed: 3, BytesIn: 15, Wakeups: 5, Events: 10, Extra: map[string]uint64{"sqes": 3, "cqes": 7}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Add (-want +got):\n%s", d)
	}
	if got.Open() != 2 || got.EventsPerWakeup() != 2 {
		t.Errorf("Open = %d, EventsPerWakeup = %v; want 2, 2", got.Open(), got.EventsPerWakeup())
	}
	if a.Extra["sqes"] != 2 {
		t.Errorf("Add changed its receiver's Extra")
	}
	var c Counters
	c.Accepted.Add(2)
	c.BytesOut.Add(9)
	if d := cmp.Diff(Stats{Accepted: 2, BytesOut: 9}, c.Snapshot()); d != "" {
		t.Errorf("Snapshot (-want +got):\n%s", d)
	}
}

func TestErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		err  error
		is   []error
	}{
		{name: "panic value", err: PanicError("OnData", "oops"), is: []error{ErrHandler}},
		{name: "panic error", err: PanicError("OnOpen", boom), is: []error{ErrHandler, boom}},
		{name: "count", err: CountError(-1, 5), is: []error{ErrHandler}},
		{name: "limit", err: InputLimitError(10, 5), is: []error{ErrInputLimit}},
		{name: "unsupported", err: Unsupported("io_uring"), is: []error{errors.ErrUnsupported}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("%v does not match %v", tt.err, target)
				}
			}
			if errors.Is(tt.err, net.ErrClosed) {
				t.Errorf("%v matches net.ErrClosed", tt.err)
			}
		})
	}
}
