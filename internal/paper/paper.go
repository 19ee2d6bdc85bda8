// Package paper runs and renders merlin's papers: reproducible
// experiments kept in papers/NNNN-slug/, each a spec (the merlin bench
// runs, see Spec), a template of prose (template.md), and what the run
// generates: results/ (bench's raw output per part, and run.json),
// figures/ (SVG and PNG, from internal/figures), tables/ (markdown),
// host.md, and README.md (the template with the host, the plan, the
// figures and the tables put in).
//
// Running the benchmarks is the caller's (merlin paper runs merlin bench
// once per part and records the run with WriteRunInfo); Render
// regenerates everything else from the results alone, so editing prose
// or plots needs no rerun; and Compare checks that a rerun kept the
// original's shape.
//
//	s, _ := paper.LoadSpec("papers/0001-kestrel")
//	_, err := paper.Render("papers/0001-kestrel", paper.RenderOptions{})
package paper

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/merlin-net/merlin/bench"
)

// RunInfo is results/run.json: what a run of the paper was.
type RunInfo struct {
	Command string    `json:"command"`
	Commit  string    `json:"commit"` // merlin's git commit; "+dirty" if the tree had changes outside papers/
	Started time.Time `json:"started"`
	// Elapsed and Estimate are seconds: the whole run, and what was
	// estimated before it started.
	Elapsed  float64    `json:"elapsed_seconds"`
	Estimate float64    `json:"estimate_seconds"`
	Overhead float64    `json:"overhead_seconds"` // per run, used by the estimate
	Parts    []PartInfo `json:"parts"`
}

// PartInfo is one part of a run.
type PartInfo struct {
	Name     string   `json:"name"`
	Args     []string `json:"args"` // merlin bench's arguments, -out included
	Runs     int      `json:"runs"`
	Estimate float64  `json:"estimate_seconds"`
	Elapsed  float64  `json:"elapsed_seconds"`
	Status   int      `json:"status"` // merlin bench's exit status
}

// Results are a paper's results, loaded.
type Results struct {
	Spec    *Spec
	Info    *RunInfo                 // nil if run.json is missing
	Reports map[string]*bench.Report // by part
}

// Summaries returns every part's summaries, by part.
func (r *Results) Summaries() map[string][]bench.Summary {
	out := map[string][]bench.Summary{}
	for p, rep := range r.Reports {
		out[p] = rep.Summaries()
	}
	return out
}

// PartNames lists the spec's parts.
func (r *Results) PartNames() []string {
	var out []string
	for _, p := range r.Spec.Parts {
		out = append(out, p.Name)
	}
	return out
}

// Load reads dir's spec, run.json and every part's results.json.
func Load(dir string) (*Results, error) {
	s, err := LoadSpec(dir)
	if err != nil {
		return nil, err
	}
	r := &Results{Spec: s, Reports: map[string]*bench.Report{}}
	if b, err := os.ReadFile(filepath.Join(dir, ResultsDir, RunFile)); err == nil {
		var info RunInfo
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ResultsDir, RunFile), err)
		}
		r.Info = &info
	}
	for _, p := range s.Parts {
		path := filepath.Join(dir, ResultsDir, p.Name, "results.json")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("part %s has no results (%w): run merlin paper %s first", p.Name, err, dir)
		}
		var rep bench.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r.Reports[p.Name] = &rep
	}
	return r, nil
}

// WriteRunInfo writes results/run.json into dir.
func WriteRunInfo(dir string, info *RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, ResultsDir), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ResultsDir, RunFile), append(b, '\n'), 0o644)
}
