package kprofile

import (
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"
)

// Category is one bucket of CPU time.
type Category struct {
	ID   string // in results and rules: "tcpip"
	Name string // for people: "TCP/IP"
}

// Categories are every category, in the order tables and figures show
// them: the kernel's, the program's, then other.
var Categories = []Category{
	{"tcpip", "TCP/IP"},
	{"copy", "copies"},
	{"softirq", "softirq"},
	{"syscall", "syscall entry/exit"},
	{"epoll", "epoll"},
	{"io_uring", "io_uring"},
	{"sched", "scheduler, wake-ups"},
	{"transport", "transport"},
	{"app", "application"},
	{"runtime", "Go runtime"},
	{"perf", "perf (measuring)"},
	{Other, "other"},
}

// Other is the category of samples no rule decides.
const Other = "other"

// Sched is the category of the scheduler and wake-ups.
const Sched = "sched"

// pass is the rules' category that decides nothing.
const pass = "pass"

// skid is the rules' category of frames where a sample is delivered late:
// it decides nothing, and the frame's caller is taken as the leaf.
const skid = "skid"

// CategoryName returns the name of category id, or id if it is unknown.
func CategoryName(id string) string {
	for _, c := range Categories {
		if c.ID == id {
			return c.Name
		}
	}
	return id
}

func knownCategory(id string) bool {
	for _, c := range Categories {
		if c.ID == id {
			return true
		}
	}
	return id == pass || id == skid
}

// Rule maps frames matching a pattern to a category.
type Rule struct {
	Kernel   bool   // matches kernel frames, else user frames
	Leaf     bool   // matches the sample's leaf frame only
	Category string // a Categories ID, or "pass"
	Pattern  string // '*' matches any run of characters
	DSO      string // if set, a pattern on the frame's object file's base name
	Line     int    // in the rules text
}

// Rules is an ordered list of rules: the first that matches a frame
// decides.
type Rules struct {
	rules []Rule

	mu    sync.Mutex
	cache map[frameKey]string // "" when no rule matches
}

type frameKey struct {
	kernel, leaf bool
	sym, dso     string
}

//go:embed rules.txt
var defaultRules string

var (
	defaultOnce sync.Once
	defaultRs   *Rules
)

// DefaultRules returns the rules of rules.txt.
func DefaultRules() *Rules {
	defaultOnce.Do(func() {
		rs, err := ParseRules(defaultRules)
		if err != nil {
			panic("kprofile: rules.txt: " + err.Error())
		}
		defaultRs = rs
	})
	return defaultRs
}

// ParseRules reads rules in rules.txt's format:
//
//	[leaf] kernel|user CATEGORY PATTERN... [in DSO]
func ParseRules(text string) (*Rules, error) {
	rs := &Rules{cache: map[frameKey]string{}}
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		r := Rule{Line: i + 1}
		if f[0] == "leaf" {
			r.Leaf = true
			f = f[1:]
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("line %d: want [leaf] kernel|user CATEGORY PATTERN..., have %q", i+1, line)
		}
		switch f[0] {
		case "kernel":
			r.Kernel = true
		case "user":
		default:
			return nil, fmt.Errorf("line %d: %q: want kernel or user", i+1, f[0])
		}
		r.Category = f[1]
		if !knownCategory(r.Category) {
			return nil, fmt.Errorf("line %d: unknown category %q", i+1, r.Category)
		}
		pats := f[2:]
		if n := len(pats); n >= 2 && pats[n-2] == "in" {
			r.DSO = pats[n-1]
			pats = pats[:n-2]
		}
		if len(pats) == 0 {
			return nil, fmt.Errorf("line %d: no pattern", i+1)
		}
		for _, p := range pats {
			if p == "in" {
				return nil, fmt.Errorf("line %d: \"in\" takes one DSO pattern, at the end", i+1)
			}
			r.Pattern = p
			rs.rules = append(rs.rules, r)
		}
	}
	return rs, nil
}

// Rules returns the rules in order.
func (rs *Rules) Rules() []Rule { return append([]Rule(nil), rs.rules...) }

// Frame is one frame of a sample's stack.
type Frame struct {
	Addr   uint64
	Sym    string // "[unknown]" when perf could not name it
	DSO    string // the object file: "[kernel.kallsyms]", "/usr/bin/x"
	Kernel bool
}

// cloneSuffix is what compilers append to a function they specialise:
// tcp_sendmsg_locked.isra.0, do_softirq.part.0, foo.cold.
var cloneSuffix = regexp.MustCompile(`(\.(isra|constprop|part|cold|lto_priv|localalias|llvm)(\.[0-9]+)?)+$`)

// Category returns the category of a stack, leaf first (see rules.txt),
// and the index of the frame that decided it (-1 for Other when none did).
func (rs *Rules) Category(stack []Frame) (string, int) {
	if len(stack) == 0 {
		return Other, -1
	}
	kernel := stack[0].Kernel
	leaf := true // until a frame other than a skid's
	for i, f := range stack {
		if f.Kernel != kernel {
			// A kernel sample's user frames made the system call; the
			// time was the kernel's.
			break
		}
		c := rs.frameCategory(f, leaf)
		if c != skid {
			leaf = false
		}
		switch c {
		case "", pass, skid:
			continue
		default:
			return c, i
		}
	}
	return Other, -1
}

// frameCategory returns the category of the first rule that matches f, or
// "".
func (rs *Rules) frameCategory(f Frame, leaf bool) string {
	sym := cloneSuffix.ReplaceAllString(f.Sym, "")
	dso := path.Base(f.DSO)
	k := frameKey{kernel: f.Kernel, leaf: leaf, sym: sym, dso: dso}
	rs.mu.Lock()
	c, ok := rs.cache[k]
	rs.mu.Unlock()
	if ok {
		return c
	}
	for _, r := range rs.rules {
		if r.Kernel != f.Kernel || (r.Leaf && !leaf) {
			continue
		}
		if r.DSO != "" && !glob(r.DSO, dso) {
			continue
		}
		if glob(r.Pattern, sym) {
			c = r.Category
			break
		}
	}
	rs.mu.Lock()
	rs.cache[k] = c
	rs.mu.Unlock()
	return c
}

// glob reports whether s matches pattern, where '*' matches any run of
// characters and every other character itself.
func glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}
