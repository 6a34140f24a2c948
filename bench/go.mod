module github.com/mqttas/mqttas/bench

go 1.26.0

require (
	github.com/eclipse/paho.golang v0.23.0
	github.com/eclipse/paho.mqtt.golang v1.5.1
	github.com/mqttas/mqttas v0.0.0
)

replace github.com/mqttas/mqttas => ../
