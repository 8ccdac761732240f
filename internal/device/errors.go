package device

import "fmt"

// OptionError reports options (or a device.json) that cannot work: the
// caller asked for something wrong, as opposed to a failure while running.
// Option names the Options field; `teep device` reports these as usage
// errors.
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return e.Msg }

func optionErrorf(option, format string, a ...any) error {
	return &OptionError{Option: option, Msg: fmt.Sprintf(format, a...)}
}
