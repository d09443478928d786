module stockstream.local/pause

go 1.22
