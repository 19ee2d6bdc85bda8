package uring

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/merlin-net/merlin/transports"
)

// The zero Options take the defaults the driver's keys document, so that
// uring.New(cfg, Options{}) and transports.Open("uring", cfg) make the
// same transport.
func TestOptionsDefaultsMatchTheKeys(t *testing.T) {
	got, err := Options{}.internal()
	if err != nil {
		t.Fatal(err)
	}
	def := map[string]any{}
	for _, o := range driverOptions {
		v, err := o.Parse(o.Default)
		if err != nil {
			t.Fatalf("key %s: default %q: %v", o.Key, o.Default, err)
		}
		def[o.Key] = v
	}
	want := options{
		entries: def["entries"].(int), bufSize: def["bufsize"].(int), bufCount: def["bufcount"].(int),
		sqpoll: def["sqpoll"].(bool), zcThreshold: def["zerocopy"].(int), accept: def["accept"].(string),
		fixedFiles: def["fixedfiles"].(bool), minWait: def["minwait"].(time.Duration), rawWait: def["rawwait"].(time.Duration),
		park: def["park"].(string), inlineSend: def["inlinesend"].(bool),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(options{})); diff != "" {
		t.Errorf("Options{} against the keys' defaults (-want +got):\n%s", diff)
	}
}

func TestOptionsChecked(t *testing.T) {
	for _, o := range []Options{
		{Entries: 1 << 16}, {BufCount: 48}, {BufCount: -1}, {Accept: "nosuch"},
		{RawWait: time.Second}, {MinWait: -time.Millisecond}, {Park: "sometimes"},
	} {
		if _, err := o.internal(); err == nil {
			t.Errorf("%+v: nil error", o)
		}
	}
	if o, err := (Options{FixedFiles: transports.Off, Accept: AcceptMsgRing}).internal(); err != nil || o.fixedFiles || o.accept != AcceptMsgRing {
		t.Errorf("FixedFiles Off, msgring: %+v, %v", o, err)
	}
}
