package transports

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Driver describes a transport to the registry.
type Driver struct {
	// Name is the word that selects the transport in a spec.
	Name string
	// Summary is one line on the transport's mechanism.
	Summary string
	// Options are the transport's own keys; every transport also accepts
	// CommonOptions.
	Options []Option
	// Ignores lists the common keys that mean nothing to the transport
	// (loops, where there are no loops): accepted, and documented as
	// ignored.
	Ignores []string
	// Preference orders the transports for "auto": the highest available
	// one is picked.
	Preference int
	// Probe reports whether the transport can run on this host: an error
	// wrapping errors.ErrUnsupported that names what is missing, or a
	// description of what the host offers ("" if nothing to say).
	Probe func() (string, error)
	// New makes a Transport. cfg has its defaults filled in; s holds the
	// value of every key in Options.
	New func(cfg Config, s Settings) (Transport, error)
}

// CommonOptions are the keys every transport accepts; they set the fields
// of Config. A transport documents those it ignores.
var CommonOptions = []Option{
	{Key: "loops", Kind: Int, Default: "0", Help: "event loops; 0 means GOMAXPROCS"},
	{Key: "maxwritebuffer", Kind: Size, Default: "64k", Help: "output limit per connection; reading stops at it and OnDrain fires at half"},
	{Key: "maxreadbuffer", Kind: Size, Default: "1m", Help: "unconsumed input kept per connection before it is aborted"},
	{Key: "nodelay", Kind: Bool, Default: "true", Help: "TCP_NODELAY on TCP connections"},
	{Key: "closetimeout", Kind: Duration, Default: "5s", Help: "how long Close waits to flush output"},
	{Key: "closelinger", Kind: Duration, Default: "2s", Help: "how long Close waits for the peer's FIN"},
	{Key: "writetimeout", Kind: Duration, Default: "1m0s", Help: "output pending this long with no progress aborts the connection (ErrWriteTimeout); 0 turns it off"},
	{Key: "idletimeout", Kind: Duration, Default: "0s", Help: "no bytes either way this long closes the connection (ErrIdleTimeout); 0 is off"},
}

var registry struct {
	sync.Mutex
	drivers map[string]Driver
}

// Register makes a transport available to Open. It panics if the name is
// taken or the driver is incomplete, as it is called from init functions.
func Register(d Driver) {
	registry.Lock()
	defer registry.Unlock()
	if d.Name == "auto" || !isWord(d.Name) || d.New == nil || d.Probe == nil {
		panic(fmt.Sprintf("transports: Register of an invalid driver %q", d.Name))
	}
	if _, dup := registry.drivers[d.Name]; dup {
		panic("transports: Register called twice for " + d.Name)
	}
	for _, k := range d.Ignores {
		if !slices.ContainsFunc(CommonOptions, func(c Option) bool { return c.Key == k }) {
			panic(fmt.Sprintf("transports: %s ignores %q, which is not a common key", d.Name, k))
		}
	}
	for _, o := range d.Options {
		if _, err := o.Parse(o.Default); err != nil || slices.ContainsFunc(CommonOptions, func(c Option) bool { return c.Key == o.Key }) {
			panic(fmt.Sprintf("transports: %s: bad option %s: %v", d.Name, o.Key, err))
		}
	}
	if registry.drivers == nil {
		registry.drivers = map[string]Driver{}
	}
	registry.drivers[d.Name] = d
}

// Drivers returns the registered transports, sorted by name.
func Drivers() []Driver {
	registry.Lock()
	defer registry.Unlock()
	ds := make([]Driver, 0, len(registry.drivers))
	for _, d := range registry.drivers {
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
	return ds
}

// Lookup returns the registered transport called name.
func Lookup(name string) (Driver, bool) {
	registry.Lock()
	defer registry.Unlock()
	d, ok := registry.drivers[name]
	return d, ok
}

// Settings holds the values of a transport's own keys, parsed.
type Settings struct {
	m map[string]any
}

func (s Settings) get(key string) any {
	v, ok := s.m[key]
	if !ok {
		panic("transports: no setting " + key)
	}
	return v
}

// Int returns the value of an Int or Size key.
func (s Settings) Int(key string) int { return s.get(key).(int) }

// Bool returns the value of a Bool key.
func (s Settings) Bool(key string) bool { return s.get(key).(bool) }

// Duration returns the value of a Duration key.
func (s Settings) Duration(key string) time.Duration { return s.get(key).(time.Duration) }

// String returns the value of an Enum key.
func (s Settings) String(key string) string { return s.get(key).(string) }

// Open makes the transport a spec names, with cfg under the spec's
// settings (a setting wins over the field it names). "auto" picks the
// available transport of highest Preference (uring, then libuvlike, then
// sockets), accepts only the common keys, and logs its choice to
// cfg.Logger. An unknown name or key, or a malformed value, is an error
// listing the valid ones; a transport this host cannot run is an error
// wrapping errors.ErrUnsupported.
func Open(spec string, cfg Config) (Transport, error) {
	sp, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var d Driver
	if sp.Name == "auto" {
		d, err = pickAuto(cfg)
		if err != nil {
			return nil, err
		}
		for _, kv := range sp.Settings {
			if !slices.ContainsFunc(CommonOptions, func(o Option) bool { return o.Key == kv.Key }) {
				return nil, fmt.Errorf("transports: spec %q: auto takes only the common keys (%s)", spec, keyList(CommonOptions))
			}
		}
	} else {
		var ok bool
		if d, ok = Lookup(sp.Name); !ok {
			return nil, fmt.Errorf("transports: spec %q: unknown transport %q (registered: %s)", spec, sp.Name, nameList())
		}
	}
	s, err := apply(d, sp, &cfg)
	if err != nil {
		return nil, fmt.Errorf("transports: spec %q: %w", spec, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := d.Probe(); err != nil {
		return nil, fmt.Errorf("transports: %s: %w", d.Name, err)
	}
	return d.New(cfg.WithDefaults(), s)
}

// apply sets cfg's fields from sp's common keys and returns d's own keys,
// defaults filled in.
func apply(d Driver, sp Spec, cfg *Config) (Settings, error) {
	s := Settings{m: map[string]any{}}
	for _, o := range d.Options {
		s.m[o.Key], _ = o.Parse(o.Default) // checked by Register
	}
	for _, kv := range sp.Settings {
		i := slices.IndexFunc(CommonOptions, func(o Option) bool { return o.Key == kv.Key })
		if i >= 0 {
			v, err := CommonOptions[i].Parse(kv.Value)
			if err != nil {
				return s, err
			}
			setCommon(cfg, kv.Key, v)
			continue
		}
		i = slices.IndexFunc(d.Options, func(o Option) bool { return o.Key == kv.Key })
		if i < 0 {
			return s, fmt.Errorf("%s has no key %q (valid: %s)", d.Name, kv.Key, keyList(CommonOptions, d.Options))
		}
		v, err := d.Options[i].Parse(kv.Value)
		if err != nil {
			return s, err
		}
		s.m[kv.Key] = v
	}
	return s, nil
}

func setCommon(cfg *Config, key string, v any) {
	switch key {
	case "loops":
		cfg.Loops = v.(int)
	case "maxwritebuffer":
		cfg.MaxWriteBuffer = v.(int)
	case "maxreadbuffer":
		cfg.MaxReadBuffer = v.(int)
	case "nodelay":
		cfg.NoDelay = Off
		if v.(bool) {
			cfg.NoDelay = On
		}
	case "closetimeout":
		cfg.CloseTimeout = v.(time.Duration)
	case "closelinger":
		cfg.CloseLinger = v.(time.Duration)
	case "writetimeout":
		cfg.WriteTimeout = v.(time.Duration)
		if cfg.WriteTimeout == 0 {
			cfg.WriteTimeout = -1 // off: in Config, 0 is the default
		}
	case "idletimeout":
		cfg.IdleTimeout = v.(time.Duration)
	}
}

func pickAuto(cfg Config) (Driver, error) {
	ds := Drivers()
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Preference > ds[j].Preference })
	var why []string
	for _, d := range ds {
		if _, err := d.Probe(); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", d.Name, err))
			continue
		}
		cfg.WithDefaults().Logger.Info("transports: auto picked "+d.Name, "passed over", strings.Join(why, "; "))
		return d, nil
	}
	if len(ds) == 0 {
		return Driver{}, fmt.Errorf("transports: auto: no transport is registered (import github.com/merlin-net/merlin/transports/all)")
	}
	return Driver{}, fmt.Errorf("transports: auto: no transport runs here: %s", strings.Join(why, "; "))
}

func keyList(sets ...[]Option) string {
	var ks []string
	for _, set := range sets {
		for _, o := range set {
			ks = append(ks, o.Key)
		}
	}
	return strings.Join(ks, ", ")
}

func nameList() string {
	var ns []string
	for _, d := range Drivers() {
		ns = append(ns, d.Name)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}
