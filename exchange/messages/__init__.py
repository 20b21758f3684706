"""Commands and events (records), their journal/wire codec and the field shapes every command must have."""
