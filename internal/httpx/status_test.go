package httpx

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatusRecorder(t *testing.T) {
	tests := []struct {
		name      string
		handler   func(w http.ResponseWriter)
		wantCode  int
		wantState int
	}{
		{"nothing written", func(http.ResponseWriter) {}, 0, http.StatusOK},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, http.StatusOK, http.StatusOK},
		{"header then body", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte("x"))
		}, http.StatusGone, http.StatusGone},
		{"first header wins", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusTooManyRequests)
			w.WriteHeader(http.StatusOK)
		}, http.StatusTooManyRequests, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := &StatusRecorder{ResponseWriter: rec}
			tt.handler(w)
			if w.Code != tt.wantCode || w.Status() != tt.wantState {
				t.Errorf("Code %d Status %d; want %d %d", w.Code, w.Status(), tt.wantCode, tt.wantState)
			}
			if rec.Code != tt.wantState {
				t.Errorf("underlying writer got %d, want %d", rec.Code, tt.wantState)
			}
		})
	}
}

// The real writer stays reachable through the recorder: it has no Flush
// of its own, so only Unwrap can get there.
func TestStatusRecorderUnwrap(t *testing.T) {
	rec := httptest.NewRecorder()
	rc := http.NewResponseController(&StatusRecorder{ResponseWriter: rec})
	if err := rc.Flush(); err != nil {
		t.Fatalf("Flush through the recorder: %v", err)
	}
	if !rec.Flushed {
		t.Error("the real writer was not flushed")
	}
}
