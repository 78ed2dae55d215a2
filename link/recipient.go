package link

import "strings"

// ChannelPrefix starts the recipient of a link minted for a channel
// (Slack, Teams, a webhook) rather than for an email address: the channel's
// name follows. An address cannot start with it, since "channel:x" has no
// "@", so the two never meet.
const ChannelPrefix = "channel:"

// ChannelRecipient is the recipient of the links posted to channel name.
func ChannelRecipient(name string) string { return ChannelPrefix + name }

// ChannelName returns the channel a recipient names, if it is a channel's.
func ChannelName(recipient string) (string, bool) {
	return strings.CutPrefix(recipient, ChannelPrefix)
}
