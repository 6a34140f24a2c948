// Package mqttas is a resilient MQTT client for devices and services on bad
// networks, modelled on the MicroPython client mqtt_as.
//
// The client itself arrives in a later release. Today the module provides the
// wire codec in package [github.com/mqttas/mqttas/packet], usable on its own
// to build gateways, proxies and test brokers.
package mqttas
