package figures

import (
	"strings"
	"testing"

	"github.com/merlin-net/merlin/internal/kprofile"
)

// One stacked figure per cell sampled with -kprofile, naming every
// server and category; cells without samples get none.
func TestKProfiles(t *testing.T) {
	rep := load(t, "kprofile.json")
	figs := KProfiles("kprofile", rep.Summaries())
	if len(figs) != 1 {
		t.Fatalf("%d figures, want 1 (the cell of the -kprofile runs)", len(figs))
	}
	f := figs[0]
	if f.Name != "kprofile-echo-64conns-64B-depth1" {
		t.Errorf("figure named %q", f.Name)
	}
	checkFigure(t, f, []string{"sockets", "uring", "gnet"})
	svg, _, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kprofile.Categories {
		if !strings.Contains(string(svg), ">"+c.Name+"<") {
			t.Errorf("the legend lacks category %s", c.Name)
		}
	}
	if !strings.Contains(string(svg), ">measured (/proc)<") {
		t.Errorf("the legend lacks the measured mark")
	}
	if n := len(KProfiles("kprofile", load(t, "sweep.json").Summaries())); n != 0 {
		t.Errorf("%d figures from runs without -kprofile, want none", n)
	}
}
