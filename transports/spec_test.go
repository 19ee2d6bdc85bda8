package transports

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Spec
		wantErr string
	}{
		{name: "bare", in: "sockets", want: Spec{Name: "sockets"}},
		{name: "keys", in: "uring:entries=4096,bufsize=16k",
			want: Spec{Name: "uring", Settings: []KeyValue{{"entries", "4096"}, {"bufsize", "16k"}}}},
		{name: "duration", in: "x:closetimeout=250ms", want: Spec{Name: "x", Settings: []KeyValue{{"closetimeout", "250ms"}}}},
		{name: "empty", in: "", wantErr: "bad transport name"},
		{name: "upper name", in: "Sockets", wantErr: "bad transport name"},
		{name: "colon only", in: "x:", wantErr: "not key=value"},
		{name: "no value", in: "x:a=", wantErr: "bad value"},
		{name: "no equals", in: "x:a", wantErr: "not key=value"},
		{name: "double equals", in: "x:a=b=c", wantErr: "bad value"},
		{name: "bad key", in: "x:A=1", wantErr: "bad key"},
		{name: "trailing comma", in: "x:a=1,", wantErr: "not key=value"},
		{name: "repeated key", in: "x:a=1,a=2", wantErr: "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSpec(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ParseSpec(%q) (-want +got):\n%s", tt.in, d)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

// FuzzParseSpec checks that the parser never panics and that what it
// accepts prints back to the same text and parses to the same Spec.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"sockets", "uring:entries=4096,bufsize=16k", "a:b=c", "x:a=1,a=2", ":", "a:b=c,d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		if got := sp.String(); got != s {
			t.Fatalf("String of ParseSpec(%q) = %q", s, got)
		}
		again, err := ParseSpec(sp.String())
		if err != nil {
			t.Fatalf("reparse of %q: %v", sp.String(), err)
		}
		if d := cmp.Diff(sp, again); d != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", s, d)
		}
	})
}

func TestOptionParse(t *testing.T) {
	tests := []struct {
		name    string
		opt     Option
		in      string
		want    any
		wantErr bool
	}{
		{name: "int", opt: Option{Key: "n", Kind: Int}, in: "42", want: 42},
		{name: "int junk", opt: Option{Key: "n", Kind: Int}, in: "4x", wantErr: true},
		{name: "size plain", opt: Option{Key: "s", Kind: Size}, in: "100", want: 100},
		{name: "size k", opt: Option{Key: "s", Kind: Size}, in: "16k", want: 16 << 10},
		{name: "size M", opt: Option{Key: "s", Kind: Size}, in: "2M", want: 2 << 20},
		{name: "size g", opt: Option{Key: "s", Kind: Size}, in: "1g", want: 1 << 30},
		{name: "size negative", opt: Option{Key: "s", Kind: Size}, in: "-1k", wantErr: true},
		{name: "size overflow", opt: Option{Key: "s", Kind: Size}, in: "99999999999999g", wantErr: true},
		{name: "size suffix only", opt: Option{Key: "s", Kind: Size}, in: "k", wantErr: true},
		{name: "bool", opt: Option{Key: "b", Kind: Bool}, in: "false", want: false},
		{name: "bool junk", opt: Option{Key: "b", Kind: Bool}, in: "yes", wantErr: true},
		{name: "duration", opt: Option{Key: "d", Kind: Duration}, in: "1.5s", want: 1500 * time.Millisecond},
		{name: "duration negative", opt: Option{Key: "d", Kind: Duration}, in: "-1s", wantErr: true},
		{name: "enum", opt: Option{Key: "e", Kind: Enum, Values: []string{"level", "edge"}}, in: "edge", want: "edge"},
		{name: "enum other", opt: Option{Key: "e", Kind: Enum, Values: []string{"level", "edge"}}, in: "both", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opt.Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.opt.Key+"="+tt.in) {
					t.Errorf("error %q does not name %s=%s", err, tt.opt.Key, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, d)
			}
		})
	}
}
