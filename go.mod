module github.com/mqttas/mqttas

go 1.25
