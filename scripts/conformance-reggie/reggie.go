// Package reggie: a minimal stand-in (written for this offline build, not the upstream
// library) exposing the subset of github.com/bloodorangeio/reggie the old conformance suite
// calls, on top of net/http.
package reggie

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

type method string

const (
	GET    method = "GET"
	POST   method = "POST"
	PUT    method = "PUT"
	PATCH  method = "PATCH"
	DELETE method = "DELETE"
	HEAD   method = "HEAD"
)

type Client struct {
	base, name, user, pass, agent string
	hc                            *http.Client
}

type clientOption func(*Client)

func WithDefaultName(n string) clientOption           { return func(c *Client) { c.name = n } }
func WithUsernamePassword(u, p string) clientOption   { return func(c *Client) { c.user, c.pass = u, p } }
func WithDebug(bool) clientOption                     { return func(*Client) {} }
func WithUserAgent(a string) clientOption             { return func(c *Client) { c.agent = a } }
func (c *Client) SetLogger(interface{})                {}

func NewClient(host string, opts ...clientOption) (*Client, error) {
	c := &Client{base: strings.TrimSuffix(host, "/"), hc: &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, o := range opts {
		o(c)
	}
	if c.base == "" {
		return nil, fmt.Errorf("no registry URL")
	}
	return c, nil
}

type Request struct {
	method  method
	path    string
	query   url.Values
	header  http.Header
	body    []byte
	hasBody bool
	digest  string
	ref     string
}

type requestOption func(*Request)

func WithDigest(d string) requestOption    { return func(r *Request) { r.digest = d } }
func WithReference(s string) requestOption { return func(r *Request) { r.ref = s } }

func (c *Client) NewRequest(m method, path string, opts ...requestOption) *Request {
	r := &Request{method: m, query: url.Values{}, header: http.Header{}}
	for _, o := range opts {
		o(r)
	}
	if i := strings.Index(path, "?"); i >= 0 {
		r.query, _ = url.ParseQuery(path[i+1:])
		path = path[:i]
	}
	path = strings.ReplaceAll(path, "<name>", c.name)
	path = strings.ReplaceAll(path, "<digest>", r.digest)
	path = strings.ReplaceAll(path, "<reference>", r.ref)
	r.path = path
	return r
}

func (r *Request) SetHeader(k, v string) *Request     { r.header.Set(k, v); return r }
func (r *Request) SetQueryParam(k, v string) *Request { r.query.Set(k, v); return r }
func (r *Request) SetBody(b interface{}) *Request {
	switch v := b.(type) {
	case []byte:
		r.body = v
	case string:
		r.body = []byte(v)
	}
	r.hasBody = true
	return r
}

type Response struct {
	status int
	header http.Header
	body   []byte
}

func (c *Client) Do(r *Request) (*Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.hasBody {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(string(r.method), u, body)
	if err != nil {
		return nil, err
	}
	req.Header = r.header.Clone()
	if cl := r.header.Get("Content-Length"); cl != "" && !r.hasBody {
		req.Header.Del("Content-Length")
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{resp.StatusCode, resp.Header, b}, nil
}

func (r *Response) StatusCode() int      { return r.status }
func (r *Response) Header() http.Header  { return r.header }
func (r *Response) Body() []byte         { return r.body }
func (r *Response) String() string       { return string(r.body) }
func (r *Response) GetRelativeLocation() string {
	loc := r.header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil || u.Path == "" {
		return loc
	}
	if u.RawQuery != "" {
		return u.Path + "?" + u.RawQuery
	}
	return u.Path
}

type ErrorInfo struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Detail  interface{} `json:"detail"`
}

func (r *Response) Errors() ([]*ErrorInfo, error) {
	var doc struct {
		Errors []*ErrorInfo `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		return nil, err
	}
	return doc.Errors, nil
}
