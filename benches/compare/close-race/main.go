// close-race: the "GET then at once POST" loop of issue 12, item 2, for Go's
// net/http client, and the server both clients run it against.
//
// The server answers every request with a complete keep-alive response
// (Content-Length, no "Connection: close") and closes the connection right
// after it, as tinyproxy does. A client that puts the connection back in
// its pool before it notices the FIN writes its next request onto a dead
// socket; a POST is not retried, so it fails.
//
//	close-race server            prints "listening <addr>", serves until killed
//	close-race client URL N      N rounds of GET then POST; prints one line
//
// Standard library only; close-race.sh builds and runs it.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
)

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	tp := textproto.NewReader(r)
	if _, err := tp.ReadLine(); err != nil {
		return
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return
	}
	if n, err := strconv.Atoi(hdr.Get("Content-Length")); err == nil && n > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return
		}
	}
	c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	// Closed right after the response, by the deferred Close.
}

func server() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}

func fetch(c *http.Client, method, url string) error {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("x")
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func client(url string, n int) {
	c := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	getFail, postFail := 0, 0
	for i := 0; i < n; i++ {
		if fetch(c, "GET", url) != nil {
			getFail++
		}
		if fetch(c, "POST", url) != nil {
			postFail++
		}
	}
	fmt.Printf("go n=%d get_failures=%d post_failures=%d\n", n, getFail, postFail)
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "server" {
		server()
		return
	}
	if len(os.Args) == 4 && os.Args[1] == "client" {
		n, err := strconv.Atoi(os.Args[3])
		if err == nil {
			client(os.Args[2], n)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "usage: close-race server | close-race client URL N")
	os.Exit(2)
}
