// Package progress draws a progress bar for long operations (issue 12:
// "long operations show progress on a terminal and stay quiet when output is
// not a terminal"). A Bar writes only when its output is a terminal (a
// character device), redraws at most once per interval, and is safe for
// concurrent use. It follows no specification.
package progress
