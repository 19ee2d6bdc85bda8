package transports

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Spec is a parsed transport spec: a name and key=value settings, written
// "name" or "name:key=value,key=value".
type Spec struct {
	Name     string
	Settings []KeyValue
}

// KeyValue is one setting of a Spec, as written.
type KeyValue struct {
	Key, Value string
}

// ParseSpec parses s without checking its keys against a transport; Open
// does that. Names and keys are lowercase letters, digits, '_' and '-'; a
// value is any non-empty text without ',' or '='; a key appears once.
func ParseSpec(s string) (Spec, error) {
	name, rest, hasKeys := strings.Cut(s, ":")
	if !isWord(name) {
		return Spec{}, fmt.Errorf("transports: spec %q: bad transport name %q", s, name)
	}
	sp := Spec{Name: name}
	if !hasKeys {
		return sp, nil
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return Spec{}, fmt.Errorf("transports: spec %q: setting %q is not key=value", s, kv)
		case !isWord(k):
			return Spec{}, fmt.Errorf("transports: spec %q: bad key %q", s, k)
		case v == "" || strings.Contains(v, "="):
			return Spec{}, fmt.Errorf("transports: spec %q: bad value %q for %s", s, v, k)
		case seen[k]:
			return Spec{}, fmt.Errorf("transports: spec %q: key %s given twice", s, k)
		}
		seen[k] = true
		sp.Settings = append(sp.Settings, KeyValue{k, v})
	}
	return sp, nil
}

// String returns the spec in the form ParseSpec reads.
func (sp Spec) String() string {
	var b strings.Builder
	b.WriteString(sp.Name)
	for i, kv := range sp.Settings {
		if i == 0 {
			b.WriteByte(':')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(kv.Key)
		b.WriteByte('=')
		b.WriteString(kv.Value)
	}
	return b.String()
}

func isWord(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Kind is the type of an Option's value.
type Kind int

// The kinds of Option values.
const (
	Int      Kind = iota // a decimal integer
	Size                 // bytes: an integer with an optional k, m or g suffix (powers of 1024)
	Bool                 // true or false
	Duration             // a Go duration ("250ms")
	Enum                 // one of Option.Values
)

func (k Kind) String() string {
	return [...]string{"int", "size", "bool", "duration", "enum"}[k]
}

// Option describes one key a transport accepts in its spec.
type Option struct {
	Key     string
	Kind    Kind
	Default string   // in the spec's syntax
	Values  []string // the choices of an Enum
	Help    string   // one line
}

// Parse returns v as the Option's kind: int (Int, Size), bool, time.Duration
// or string (Enum).
func (o Option) Parse(v string) (any, error) {
	var (
		x   any
		err error
	)
	switch o.Kind {
	case Int:
		x, err = strconv.Atoi(v)
	case Size:
		x, err = ParseSize(v)
	case Bool:
		x, err = strconv.ParseBool(v)
	case Duration:
		var d time.Duration
		d, err = time.ParseDuration(v)
		if err == nil && d < 0 {
			err = fmt.Errorf("negative duration")
		}
		x = d
	case Enum:
		for _, c := range o.Values {
			if v == c {
				return v, nil
			}
		}
		err = fmt.Errorf("want one of %s", strings.Join(o.Values, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("transports: %s=%s: not a valid %s: %w", o.Key, v, o.Kind, unwrapNum(err))
	}
	return x, nil
}

// unwrapNum drops strconv's repetition of the input from its errors.
func unwrapNum(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}

// ParseSize parses a byte count with an optional k, m or g suffix (either
// case, powers of 1024): "64k" is 65536.
func ParseSize(s string) (int, error) {
	mult := 1
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("negative size")
	}
	if n > (1<<62)/mult {
		return 0, strconv.ErrRange
	}
	return n * mult, nil
}
