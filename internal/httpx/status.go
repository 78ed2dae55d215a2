// Package httpx holds small net/http helpers the services and the
// development harness share.
package httpx

import "net/http"

// StatusRecorder is a ResponseWriter that remembers the status code written
// through it, for metrics and logs after the handler returns.
type StatusRecorder struct {
	http.ResponseWriter
	// Code is the first status written; 0 until the handler writes a
	// header or a body (a handler that aborts the connection leaves it 0).
	Code int
}

func (w *StatusRecorder) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusRecorder) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines on the
// real writer.
func (w *StatusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Status is what the client was sent: Code, or 200 when the handler wrote
// nothing, as net/http then answers.
func (w *StatusRecorder) Status() int {
	if w.Code == 0 {
		return http.StatusOK
	}
	return w.Code
}
