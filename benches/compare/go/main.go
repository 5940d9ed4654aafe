// compare-go: Go's net/http client in the same harness as the Rust clients.
// Same CLI (<mode> <url> <threads> <count>), same modes, same JSON line.
// The -tls modes (seq-tls, conc-tls, fresh-tls, download-tls) run the same
// over https://, trusting the CA in the PEM file $COMPARE_CA (when set) as
// the only root, over HTTP/1.1 (a Transport with a TLSClientConfig does not
// attempt HTTP/2 unless told to). The -h2 modes (seq-h2, conc-h2 and
// conc128-h2, the last being conc under its own name) run seq and conc over
// HTTP/2: ForceAttemptHTTP2 (ALPN h2, http/1.1), every response must have
// ProtoMajor 2, and the sampler also counts the process's sockets.
// Standard library only; run.sh builds it with `go build` when Go is present.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const bufSize = 64 * 1024
const kernelStackKiB = 16.0

// How long the idle connections sit before they are measured (the Rust
// harness's IDLE_SETTLE).
const idleSettle = 2 * time.Second

func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func openSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:") {
			seen[l] = true
		}
	}
	return len(seen)
}

func drain(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func get(c *http.Client, url string, close, h2 bool, buf []byte) (int64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	if close {
		req.Close = true
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if h2 && resp.ProtoMajor != 2 {
		return 0, fmt.Errorf("-h2 mode, but the response came over %s", resp.Proto)
	}
	return drain(resp.Body, buf)
}

func fail(mode, url string, err error) {
	fmt.Fprintf(os.Stderr, "go %s %s: error: %v\n", mode, url, err)
	os.Exit(1)
}

// tlsConfig trusts the certificates in the PEM file $COMPARE_CA only; nil
// (Go's defaults) when it is not set.
func tlsConfig() (*tls.Config, error) {
	path := os.Getenv("COMPARE_CA")
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("COMPARE_CA=%s: %v", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("COMPARE_CA=%s holds no certificate", path)
	}
	return &tls.Config{RootCAs: pool}, nil
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: compare-go <seq|conc|fresh|download|idle> <http-url> <threads> <count>\n"+
			"       compare-go <seq-tls|conc-tls|fresh-tls|download-tls> <https-url> <threads> <count>\n"+
			"       compare-go <seq-h2|conc-h2|conc128-h2> <https-url-of-an-h2-port> <threads> <count>")
		os.Exit(2)
	}
	mode, url := os.Args[1], os.Args[2]
	// The JSON line keeps the mode as given; base is what the run does.
	base := strings.TrimSuffix(mode, "-tls")
	isTLS := base != mode
	isH2 := false
	if h2base := strings.TrimSuffix(mode, "-h2"); h2base != mode {
		switch h2base {
		case "seq", "conc":
			base = h2base
		case "conc128":
			base = "conc"
		default:
			fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
			os.Exit(2)
		}
		isTLS, isH2 = true, true
	}
	https := strings.HasPrefix(strings.ToLower(url), "https://")
	if isTLS && (base == "idle" || !https) || !isTLS && https {
		fmt.Fprintf(os.Stderr, "mode %q does not go with %s (the -tls modes, all but idle, take https:// URLs, the others http://)\n", mode, url)
		os.Exit(2)
	}
	threads, err1 := strconv.Atoi(os.Args[3])
	count, err2 := strconv.Atoi(os.Args[4])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "threads and count must be numbers")
		os.Exit(2)
	}
	if threads < 1 {
		threads = 1
	}
	perHost := threads
	if perHost < 2 {
		perHost = 2
	}
	var tlsConf *tls.Config
	if isTLS {
		var err error
		if tlsConf, err = tlsConfig(); err != nil {
			fail(mode, url, err)
		}
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: perHost,
		TLSClientConfig:     tlsConf,
		// With a TLSClientConfig set, HTTP/2 is off unless forced: on in
		// the -h2 modes only, so the -tls modes stay HTTP/1.1.
		ForceAttemptHTTP2: isH2,
	}}
	fresh := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: tlsConf}}

	var requests, bytes int64
	var secs float64
	extra := ""
	switch base {
	case "seq", "conc", "fresh", "download":
		warm := count / 20
		if warm < 1 {
			warm = 1
		}
		if warm > 200 {
			warm = 200
		}
		if base == "download" {
			warm = 0
		}
		c := client
		if base == "fresh" {
			c = fresh
		}
		var peak, peakSockets, timedPeakSockets int64
		var timed int32 // set once the timed part starts
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			if os.Getenv("COMPARE_NO_SAMPLER") == "1" {
				<-stop
				return
			}
			for tick := 0; ; tick++ {
				if n := procStatus("Threads"); n > atomic.LoadInt64(&peak) {
					atomic.StoreInt64(&peak, n)
				}
				// Sockets every 50 ms, in the -h2 modes (the Rust harness's
				// sampler does the same).
				if isH2 && tick%10 == 0 {
					n := int64(openSockets())
					if n > atomic.LoadInt64(&peakSockets) {
						atomic.StoreInt64(&peakSockets, n)
					}
					if atomic.LoadInt32(&timed) == 1 && n > atomic.LoadInt64(&timedPeakSockets) {
						atomic.StoreInt64(&timedPeakSockets, n)
					}
				}
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		ready.Add(threads)
		done.Add(threads)
		errs := make(chan error, threads)
		var total int64
		for t := 0; t < threads; t++ {
			go func() {
				defer done.Done()
				buf := make([]byte, bufSize)
				for i := 0; i < warm; i++ {
					if _, err := get(c, url, base == "fresh", isH2, buf); err != nil {
						errs <- err
						ready.Done()
						return
					}
				}
				ready.Done()
				<-start
				var b int64
				for i := 0; i < count; i++ {
					n, err := get(c, url, base == "fresh", isH2, buf)
					if err != nil {
						errs <- err
						return
					}
					b += n
				}
				atomic.AddInt64(&total, b)
			}()
		}
		ready.Wait()
		t0 := time.Now()
		atomic.StoreInt32(&timed, 1)
		close(start)
		done.Wait()
		secs = time.Since(t0).Seconds()
		close(stop)
		<-sampled
		if n := procStatus("Threads"); n > peak {
			peak = n
		}
		select {
		case err := <-errs:
			fail(mode, url, err)
		default:
		}
		requests = int64(threads * count)
		bytes = total
		extra = fmt.Sprintf("\"peak_threads\":%d", peak)
		if isH2 {
			endSockets := int64(openSockets())
			if endSockets > peakSockets {
				peakSockets = endSockets
			}
			if endSockets > timedPeakSockets {
				timedPeakSockets = endSockets
			}
			extra += fmt.Sprintf(",\"proto\":\"h2\",\"peak_sockets\":%d,\"timed_peak_sockets\":%d,\"end_sockets\":%d",
				peakSockets, timedPeakSockets, endSockets)
		}
	case "idle":
		n := threads
		buf := make([]byte, bufSize)
		if _, err := get(client, url, false, false, buf); err != nil {
			fail(mode, url, err)
		}
		time.Sleep(200 * time.Millisecond)
		rss0, thr0, sock0 := procStatus("VmRSS"), procStatus("Threads"), openSockets()
		t0 := time.Now()
		var wg, all sync.WaitGroup
		wg.Add(n)
		all.Add(n)
		errs := make(chan error, n)
		var total int64
		for i := 0; i < n; i++ {
			go func() {
				defer wg.Done()
				resp, err := client.Get(url)
				all.Done()
				all.Wait()
				if err != nil {
					errs <- err
					return
				}
				b, err := drain(resp.Body, make([]byte, 16*1024))
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				atomic.AddInt64(&total, b)
			}()
		}
		wg.Wait()
		secs = time.Since(t0).Seconds()
		select {
		case err := <-errs:
			fail(mode, url, err)
		default:
		}
		time.Sleep(idleSettle)
		rss1, thr1, sock1 := procStatus("VmRSS"), procStatus("Threads"), openSockets()
		conns := sock1 - sock0
		nf := float64(n)
		if conns > 0 {
			nf = float64(conns) // the warm-up connection may serve one request
		}
		rssPer := float64(rss1-rss0) / nf
		thrPer := float64(thr1-thr0) / nf
		ks := thrPer * kernelStackKiB
		extra = fmt.Sprintf("\"peak_threads\":%d,\"idle_conns\":%d,\"rss_before_kib\":%d,\"rss_after_kib\":%d,"+
			"\"threads_before\":%d,\"threads_after\":%d,\"rss_per_conn_kib\":%.2f,\"threads_per_conn\":%.2f,"+
			"\"kernel_stack_per_conn_kib\":%.2f,\"idle_cost_per_conn_kib\":%.2f",
			thr1, conns, rss0, rss1, thr0, thr1, rssPer, thrPer, ks, rssPer+ks)
		requests = int64(n)
		bytes = total
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		os.Exit(2)
	}
	hwm := procStatus("VmHWM")
	fmt.Printf("{\"client\":\"go\",\"mode\":\"%s\",\"threads\":%d,\"count\":%d,\"requests\":%d,\"bytes\":%d,"+
		"\"secs\":%.6f,\"req_per_s\":%.1f,\"mb_per_s\":%.2f,\"peak_rss_kib\":%d,%s}\n",
		mode, threads, count, requests, bytes, secs, float64(requests)/secs, float64(bytes)/secs/1e6, hwm, extra)
}
