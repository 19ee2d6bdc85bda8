package cli

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	runpprof "runtime/pprof"
	"runtime/trace"
	"time"
)

// profiling holds serve's profiling flags.
type profiling struct {
	cpuprofile, trace, pprofAddr string
}

func (p *profiling) flags(fs *flag.FlagSet) {
	fs.StringVar(&p.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to `file` (completed at exit)")
	fs.StringVar(&p.trace, "trace", "", "write an execution trace of the whole run to `file` (completed at exit)")
	fs.StringVar(&p.pprofAddr, "pprof", "", "serve net/http/pprof on `address` (a listener of its own, e.g. 127.0.0.1:6060)")
}

// start starts what the flags ask for and returns the function that
// stops it and completes the files.
func (p *profiling) start(log *slog.Logger) (stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if p.cpuprofile != "" {
		f, err := os.Create(p.cpuprofile)
		if err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		if err := runpprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		stops = append(stops, func() error {
			runpprof.StopCPUProfile()
			return f.Close()
		})
	}
	if p.trace != "" {
		f, err := os.Create(p.trace)
		if err != nil {
			return nil, fmt.Errorf("-trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("-trace: %w", err)
		}
		stops = append(stops, func() error {
			trace.Stop()
			return f.Close()
		})
	}
	if p.pprofAddr != "" {
		stopPprof, err := servePprof(p.pprofAddr, log)
		if err != nil {
			return nil, err
		}
		stops = append(stops, stopPprof)
	}
	return stop, nil
}

// servePprof serves net/http/pprof on a listener of its own at addr.
func servePprof(addr string, log *slog.Logger) (stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	log.Info("pprof", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() error {
		err := srv.Close()
		<-done
		return err
	}, nil
}
