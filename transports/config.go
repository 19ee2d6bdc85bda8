package transports

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Defaults of Config's fields.
const (
	DefaultMaxWriteBuffer = 64 << 10 // as Kestrel's MaxResponseBufferSize
	DefaultMaxReadBuffer  = 1 << 20  // as Kestrel's MaxRequestBufferSize
	DefaultCloseTimeout   = 5 * time.Second
	DefaultCloseLinger    = 2 * time.Second
	// DefaultWriteTimeout bounds how long output may wait with no
	// progress; as nginx's send_timeout (60 s). Kestrel's
	// MinResponseDataRate (240 B/s after a 5 s grace) is the same
	// defence as a rate.
	DefaultWriteTimeout = 60 * time.Second
)

// Switch is an on/off setting whose zero value means "the default".
type Switch int8

// The values of a Switch.
const (
	Default Switch = iota
	On
	Off
)

// Or returns whether s is on, taking def where s is Default.
func (s Switch) Or(def bool) bool {
	switch s {
	case On:
		return true
	case Off:
		return false
	}
	return def
}

func (s Switch) String() string {
	switch s {
	case On:
		return "on"
	case Off:
		return "off"
	}
	return "default"
}

// Config holds the settings every transport accepts. The zero value of each
// field means its default; a spec's keys override them (see Open).
type Config struct {
	// MaxWriteBuffer is the output limit of a Conn, in bytes: at or above
	// it the transport stops reading the Conn, and at half of it reading
	// resumes and OnDrain is called. Default 64 KiB.
	MaxWriteBuffer int
	// MaxReadBuffer is the input limit of a Conn: a Conn keeping more
	// unconsumed bytes after an OnData is aborted with ErrInputLimit.
	// Default 1 MiB.
	MaxReadBuffer int
	// Loops is the number of event loops. Default runtime.GOMAXPROCS(0).
	// Transports without loops (sockets) ignore it.
	Loops int
	// NoDelay sets TCP_NODELAY on TCP connections. Default On.
	NoDelay Switch
	// CloseTimeout bounds how long Close waits to flush output. Default 5 s.
	CloseTimeout time.Duration
	// CloseLinger bounds how long Close waits for the peer's FIN after its
	// own. Default 2 s.
	CloseLinger time.Duration
	// WriteTimeout bounds how long a Conn's output may stay pending with
	// no progress (no byte taken by the kernel): a peer that stops
	// reading is aborted with ErrWriteTimeout. Default 60 s; negative
	// turns it off.
	WriteTimeout time.Duration
	// IdleTimeout closes a Conn (as Close does; OnClose err matches
	// ErrIdleTimeout) once no byte has moved either way for this long.
	// Default 0: off.
	IdleTimeout time.Duration
	// Logger receives recovered panics and unexpected errors. Default
	// slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxWriteBuffer == 0 {
		c.MaxWriteBuffer = DefaultMaxWriteBuffer
	}
	if c.MaxReadBuffer == 0 {
		c.MaxReadBuffer = DefaultMaxReadBuffer
	}
	if c.Loops == 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.NoDelay == Default {
		c.NoDelay = On
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.CloseLinger == 0 {
		c.CloseLinger = DefaultCloseLinger
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field of c that no transport can use.
func (c Config) Validate() error {
	switch {
	case c.MaxWriteBuffer < 0:
		return fmt.Errorf("transports: MaxWriteBuffer %d is negative", c.MaxWriteBuffer)
	case c.MaxReadBuffer < 0:
		return fmt.Errorf("transports: MaxReadBuffer %d is negative", c.MaxReadBuffer)
	case c.Loops < 0:
		return fmt.Errorf("transports: Loops %d is negative", c.Loops)
	case c.CloseTimeout < 0:
		return fmt.Errorf("transports: CloseTimeout %v is negative", c.CloseTimeout)
	case c.CloseLinger < 0:
		return fmt.Errorf("transports: CloseLinger %v is negative", c.CloseLinger)
	case c.IdleTimeout < 0:
		return fmt.Errorf("transports: IdleTimeout %v is negative", c.IdleTimeout)
	}
	return nil
}
