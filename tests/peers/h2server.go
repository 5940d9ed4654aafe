// h2server: Go's own net/http server over TLS (ALPN h2, http/1.1), an
// HTTP/2 implementation nobody on this team wrote, for tests/h2_interop.rs.
// Standard library only: `go build h2server.go` needs no module.
//
// It listens on 127.0.0.1:0, prints "PORT n" as the first line of stdout,
// and exits when stdin closes (the test holds it open).
//
// Every response carries x-proto (the request's protocol, "HTTP/2.0") and
// x-remote (the client's address: one value per connection).
//
//	/bytes/N   N bytes of the pattern (byte i is i % 251), Content-Length.
//	/echo      the request body back; x-body-len is its length.
//	/trailers  "hello, trailers\n" then trailers x-trailer: done and
//	           x-body-len: 16 (declared in the Trailer header).
//	/headers   the request headers, one "name: value" line each, sorted.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
)

const period = 251

func main() {
	certFile := flag.String("cert", "", "PEM certificate chain")
	keyFile := flag.String("key", "", "PEM private key")
	flag.Parse()
	if *certFile == "" || *keyFile == "" {
		log.Fatal("h2server: -cert and -key are required")
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i % period)
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("x-body-len", strconv.Itoa(len(body)))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "x-trailer, x-body-len")
		w.Header().Set("Content-Type", "text/plain")
		body := "hello, trailers\n"
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, body)
		w.(http.Flusher).Flush()
		w.Header().Set("x-trailer", "done")
		w.Header().Set("x-body-len", strconv.Itoa(len(body)))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for name, values := range r.Header {
			for _, v := range values {
				lines = append(lines, strings.ToLower(name)+": "+v)
			}
		}
		sort.Strings(lines)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Join(lines, "\n")+"\n")
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-proto", r.Proto)
		w.Header().Set("x-remote", r.RemoteAddr)
		mux.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("PORT %d\n", ln.Addr().(*net.TCPAddr).Port)

	// The test holds stdin open; EOF means it is done (or died).
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()

	srv := &http.Server{
		Handler:   handler,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		ErrorLog:  log.New(os.Stderr, "h2server: ", 0),
	}
	// ServeTLS configures HTTP/2 (ALPN h2, then http/1.1) by itself.
	if err := srv.ServeTLS(ln, *certFile, *keyFile); err != nil {
		log.Fatal(err)
	}
}
