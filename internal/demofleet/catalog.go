package demofleet

import (
	"github.com/fleetward/fleetward/internal/inventory"
)

// product is one kind of device the demo organization owns: a vendor's
// model family, the firmware versions seen in the field, and where it sits.
type product struct {
	class  string
	vendor string
	models []string
	// short is the class abbreviation in device names ("cam", "plc").
	short string
	// segment is the network segment the product lives on.
	segment string
	// sites restricts the product to some sites; nil means every site.
	sites []string
	// weight is the product's share among the products of its class at a
	// site.
	weight float64
	// ouis are the vendor's real IEEE MAC prefixes (checked against the
	// IEEE registry), lower-case, colon-separated.
	ouis []string
	// os is the operating system; firmware entries carry its version.
	os string
	// firmware lists the versions in the field, oldest first.
	firmware []firmware
	// serial formats a serial number.
	serial serialStyle
	// protocols the device speaks on the network, for the "protocols"
	// attribute.
	protocols string
	// nics is the number of network interfaces (2 for routers: LAN and WAN).
	nics int
	// risk is the base risk of the product before firmware age, status
	// and exposure.
	risk float64
	tags []string
}

// firmware is one version of a product's firmware and what it runs on.
type firmware struct {
	version   string
	osVersion string
	// busybox is the BusyBox version of an embedded Linux image, if any.
	busybox string
	// weight is the version's share of the product's installed base; older
	// versions are rarer.
	weight float64
	// eol marks an operating system past its end of life.
	eol bool
}

// serialStyle picks how a vendor writes serial numbers.
type serialStyle int

const (
	serialGeneric   serialStyle = iota // vendor prefix, year and week, counter
	serialHikvision                    // model, date, "AAWR", 9 digits
	serialDahua                        // 15 upper-case letters and digits
	serialAxis                         // the MAC address, upper-case hex (Axis prints it as the serial)
	serialSiemens                      // "S C-" and 10 letters and digits
	serialRockwell                     // 8 hex digits
	serialHP                           // country code, year-week, 5 alphanumerics ("CNBRM2K0QJ")
)

// The network segments of the demo organization, in address order: segment
// k uses third octets 40k to 40k+39 of its site's 10.<site>.0.0/16.
const (
	SegmentCCTV               = "cctv"
	SegmentBuildingAutomation = "building-automation"
	SegmentOT                 = "ot"
	SegmentMedical            = "medical"
	SegmentCorpIoT            = "corp-iot"
	SegmentGuest              = "guest"
)

// Segments lists the segments in address order.
func Segments() []string {
	return []string{SegmentCCTV, SegmentBuildingAutomation, SegmentOT, SegmentMedical, SegmentCorpIoT, SegmentGuest}
}

const (
	embeddedLinux = "Embedded Linux"
	rtos          = "Proprietary RTOS"
)

const (
	siteHQ        = "hq-berlin"
	sitePlant     = "plant-lyon"
	siteClinic    = "clinic-madrid"
	siteWarehouse = "warehouse-rotterdam"
	siteLab       = "lab-austin"
	siteOffice    = "office-singapore"
)

// catalog returns every product of the demo organization.
func catalog() []product {
	return []product{
		// Cameras.
		{class: inventory.ClassCamera, vendor: "Hikvision", short: "cam", segment: SegmentCCTV, weight: 0.12,
			models: []string{"DS-2CD2142FWD-I", "DS-2CD2042WD-I", "DS-2CD2T42WD-I5"},
			ouis:   []string{"44:47:cc", "58:03:fb", "94:e1:ac"}, os: embeddedLinux, serial: serialHikvision,
			firmware: []firmware{
				{"V5.4.5 build 170124", "3.0.8", "1.19.3", 1, true},
				{"V5.5.0 build 170725", "3.0.8", "1.19.3", 2, true},
				{"V5.5.82 build 190909", "3.10.0", "1.22.1", 4, true},
				{"V5.5.800 build 210628", "3.10.0", "1.22.1", 6, true},
			},
			protocols: "http,rtsp,onvif,isapi", nics: 1, risk: 22, tags: []string{"poe", "onvif"}},
		{class: inventory.ClassCamera, vendor: "Hikvision", short: "cam", segment: SegmentCCTV, weight: 0.22,
			models: []string{"DS-2CD2143G2-I", "DS-2CD2347G2-LU", "DS-2CD2387G2-LU", "DS-2CD2T86G2-4I"},
			ouis:   []string{"64:db:8b", "44:47:cc", "58:03:fb"}, os: embeddedLinux, serial: serialHikvision,
			firmware: []firmware{
				{"V5.7.3 build 220112", "4.9.37", "1.29.3", 1, false},
				{"V5.7.10 build 221116", "4.9.37", "1.29.3", 3, false},
				{"V5.7.15 build 230425", "4.9.37", "1.29.3", 5, false},
				{"V5.7.21 build 240108", "4.9.37", "1.31.1", 8, false},
			},
			protocols: "http,https,rtsp,onvif,isapi", nics: 1, risk: 15, tags: []string{"poe", "onvif"}},
		{class: inventory.ClassCamera, vendor: "Dahua", short: "cam", segment: SegmentCCTV, weight: 0.2,
			models: []string{"IPC-HFW2431S-S-S2", "IPC-HDW2431T-AS-S2", "IPC-HFW5442E-ZE", "IPC-HDBW2441E-S"},
			ouis:   []string{"08:ed:ed", "6c:1c:71", "74:c9:29", "24:52:6a"}, os: embeddedLinux, serial: serialDahua,
			firmware: []firmware{
				{"2.800.0000000.8.R", "4.9.37", "1.29.3", 1, false},
				{"2.800.0000000.16.R", "4.9.37", "1.29.3", 2, false},
				{"2.800.0000000.25.R", "4.9.118", "1.29.3", 4, false},
				{"2.800.0000000.31.R", "4.9.118", "1.31.1", 6, false},
			},
			protocols: "http,rtsp,onvif,dhip", nics: 1, risk: 17, tags: []string{"poe", "onvif"}},
		{class: inventory.ClassCamera, vendor: "Axis Communications", short: "cam", segment: SegmentCCTV, weight: 0.3,
			models: []string{"P3245-LVE", "P3265-LVE", "P1455-LE", "P3727-PLE"},
			ouis:   []string{"00:40:8c", "ac:cc:8e", "b8:a4:4f"}, os: "AXIS OS", serial: serialAxis,
			firmware: []firmware{
				{"10.12.182", "10.12 LTS", "", 2, false},
				{"11.5.64", "11.5", "", 2, false},
				{"11.8.64", "11.8", "", 4, false},
				{"11.11.73", "11.11 LTS", "", 7, false},
			},
			protocols: "https,rtsp,onvif,vapix", nics: 1, risk: 8, tags: []string{"poe", "onvif"}},
		{class: inventory.ClassCamera, vendor: "Reolink", short: "cam", segment: SegmentCCTV, weight: 0.16,
			sites:  []string{siteWarehouse, siteLab, siteOffice},
			models: []string{"RLC-810A", "RLC-520A", "RLC-823A"},
			ouis:   []string{"ec:71:db"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"v3.0.0.494_21073000", "4.9.118", "1.27.2", 1, false},
				{"v3.1.0.956_22041503", "4.9.118", "1.27.2", 2, false},
				{"v3.1.0.1162_22080815", "4.9.118", "1.27.2", 3, false},
				{"v3.1.0.2368_23062508", "4.9.118", "1.27.2", 5, false},
			},
			protocols: "http,rtsp,onvif", nics: 1, risk: 20, tags: []string{"poe"}},
		{class: inventory.ClassSpeaker, vendor: "Axis Communications", short: "spk", segment: SegmentCCTV, weight: 1,
			models: []string{"C1410 Network Mini Speaker", "C1310-E Network Horn Speaker"},
			ouis:   []string{"b8:a4:4f", "ac:cc:8e"}, os: "AXIS OS", serial: serialAxis,
			firmware: []firmware{
				{"10.12.165", "10.12 LTS", "", 2, false},
				{"11.9.60", "11.9", "", 5, false},
			},
			protocols: "https,sip,vapix", nics: 1, risk: 6, tags: []string{"poe", "paging"}},

		// Thermostats and HVAC.
		{class: inventory.ClassThermostat, vendor: "Honeywell", short: "tstat", segment: SegmentBuildingAutomation, weight: 0.5,
			models: []string{"T6 Pro Smart TH6320WF2003", "T9 Smart RCHT9610WF"},
			ouis:   []string{"48:a2:e6", "b8:2c:a0", "00:d0:2d"}, os: "FreeRTOS", serial: serialGeneric,
			firmware: []firmware{
				{"2.6.12", "9.0.0", "", 1, true},
				{"3.1.5", "10.2.1", "", 3, false},
				{"3.4.2", "10.4.3", "", 5, false},
			},
			protocols: "https,mqtt", nics: 1, risk: 6, tags: []string{"wifi"}},
		{class: inventory.ClassThermostat, vendor: "Johnson Controls", short: "tstat", segment: SegmentBuildingAutomation, weight: 0.35,
			models: []string{"TEC3630-00-000", "TEC3620-00-000"},
			ouis:   []string{"00:10:8d"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"1.1.0.64", "", "", 1, false},
				{"1.2.1.206", "", "", 3, false},
				{"1.3.0.118", "", "", 4, false},
			},
			protocols: "bacnet/ip", nics: 1, risk: 9, tags: []string{"bacnet"}},
		{class: inventory.ClassThermostat, vendor: "ecobee", short: "tstat", segment: SegmentBuildingAutomation, weight: 0.3,
			sites:  []string{siteLab, siteOffice},
			models: []string{"SmartThermostat Premium EB-STATE6P-01"},
			ouis:   []string{"44:61:32"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"4.8.7.152", "4.14.98", "1.30.1", 2, false},
				{"4.8.7.230", "4.14.98", "1.30.1", 5, false},
			},
			protocols: "https", nics: 1, risk: 7, tags: []string{"wifi"}},
		{class: inventory.ClassHVAC, vendor: "Johnson Controls", short: "hvac", segment: SegmentBuildingAutomation, weight: 0.45,
			models: []string{"FX-PCG2611", "FX-PCV1930"},
			ouis:   []string{"00:10:8d"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"10.1.0", "", "", 1, false},
				{"11.0.2", "", "", 3, false},
				{"12.0.1", "", "", 4, false},
			},
			protocols: "bacnet/ip", nics: 1, risk: 12, tags: []string{"bacnet"}},
		{class: inventory.ClassHVAC, vendor: "Siemens", short: "hvac", segment: SegmentBuildingAutomation, weight: 0.35,
			models: []string{"Desigo PXC5.E003", "Desigo PXC4.E16"},
			ouis:   []string{"00:c0:e4"}, os: embeddedLinux, serial: serialSiemens,
			firmware: []firmware{
				{"V6.0.154", "4.14.78", "1.27.2", 2, false},
				{"V7.0.61", "5.4.70", "1.33.1", 5, false},
			},
			protocols: "bacnet/ip,https", nics: 1, risk: 9, tags: []string{"bacnet"}},
		{class: inventory.ClassHVAC, vendor: "Honeywell", short: "hvac", segment: SegmentBuildingAutomation, weight: 0.2,
			models: []string{"Spyder PUB6438SR"},
			ouis:   []string{"00:40:84", "00:80:a7"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"2.0.3", "", "", 1, false},
				{"2.3.1", "", "", 3, false},
			},
			protocols: "bacnet/ip", nics: 1, risk: 11, tags: []string{"bacnet"}},

		// Controllers: building supervisors and industrial PCs.
		{class: inventory.ClassController, vendor: "Honeywell", short: "ctl", segment: SegmentBuildingAutomation, weight: 0.35,
			models: []string{"WEB-8000 (Niagara 4 JACE)"},
			ouis:   []string{"00:01:f0"}, os: "QNX Neutrino", serial: serialGeneric,
			firmware: []firmware{
				{"Niagara 4.9.0.198", "6.5.0 SP1", "", 1, true},
				{"Niagara 4.10.5.18", "6.5.0 SP1", "", 2, true},
				{"Niagara 4.12.2.16", "6.5.0 SP1", "", 4, true},
				{"Niagara 4.13.1.16", "6.5.0 SP1", "", 5, true},
			},
			protocols: "https,fox,bacnet/ip,modbus/tcp", nics: 2, risk: 16, tags: []string{"bms", "vendor-managed"}},
		{class: inventory.ClassController, vendor: "Johnson Controls", short: "ctl", segment: SegmentBuildingAutomation, weight: 0.35,
			models: []string{"Metasys SNE10500", "Metasys SNE22000"},
			ouis:   []string{"00:10:8d"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"Metasys 10.1.5", "4.14.35", "1.27.2", 1, false},
				{"Metasys 11.0.3", "4.19.94", "1.31.1", 3, false},
				{"Metasys 12.0.1", "5.10.120", "1.35.0", 4, false},
			},
			protocols: "https,bacnet/ip", nics: 2, risk: 12, tags: []string{"bms", "vendor-managed"}},
		{class: inventory.ClassController, vendor: "Siemens", short: "ipc", segment: SegmentOT, weight: 0.6,
			sites:  []string{sitePlant, siteLab, siteWarehouse},
			models: []string{"SIMATIC IPC127E", "SIMATIC IPC277G"},
			ouis:   []string{"28:63:36", "ec:1c:5d"}, os: "Windows 10 IoT Enterprise", serial: serialSiemens,
			firmware: []firmware{
				{"BIOS V25.01.12", "LTSC 2019 (1809)", "", 3, false},
				{"BIOS V26.01.09", "LTSC 2021 (21H2)", "", 4, false},
			},
			protocols: "rdp,smb,opc-ua,profinet", nics: 2, risk: 14, tags: []string{"hmi"}},

		// PLCs.
		{class: inventory.ClassPLC, vendor: "Siemens", short: "plc", segment: SegmentOT, weight: 0.4,
			sites:  []string{sitePlant, siteLab},
			models: []string{"SIMATIC S7-1200 CPU 1214C DC/DC/DC (6ES7214-1AG40-0XB0)", "SIMATIC S7-1200 CPU 1215C DC/DC/DC (6ES7215-1AG40-0XB0)", "SIMATIC S7-1200 CPU 1212C AC/DC/RLY (6ES7212-1BE40-0XB0)"},
			ouis:   []string{"28:63:36", "ec:1c:5d", "00:0e:8c"}, os: rtos, serial: serialSiemens,
			firmware: []firmware{
				{"V4.1.3", "", "", 1, false},
				{"V4.2.3", "", "", 2, false},
				{"V4.4.0", "", "", 3, false},
				{"V4.5.2", "", "", 4, false},
				{"V4.6.1", "", "", 5, false},
			},
			protocols: "s7comm,s7comm-plus,profinet,http", nics: 1, risk: 20, tags: []string{"profinet"}},
		{class: inventory.ClassPLC, vendor: "Schneider Electric", short: "plc", segment: SegmentOT, weight: 0.25,
			sites:  []string{sitePlant, siteWarehouse},
			models: []string{"Modicon M221 TM221CE24T", "Modicon M221 TM221CE16R"},
			ouis:   []string{"00:80:f4", "00:00:54"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"1.5.1.0", "", "", 1, false},
				{"1.6.2.0", "", "", 2, false},
				{"1.10.2.2", "", "", 4, false},
				{"1.14.2.0", "", "", 5, false},
			},
			protocols: "modbus/tcp,http", nics: 1, risk: 22, tags: []string{"modbus"}},
		{class: inventory.ClassPLC, vendor: "Schneider Electric", short: "plc", segment: SegmentOT, weight: 0.15,
			sites:  []string{sitePlant},
			models: []string{"Modicon M340 BMX P34 2020"},
			ouis:   []string{"00:80:f4", "00:00:54"}, os: "VxWorks", serial: serialGeneric,
			firmware: []firmware{
				{"V3.20", "6.9", "", 1, false},
				{"V3.30", "6.9", "", 2, false},
				{"V3.50", "6.9", "", 4, false},
			},
			protocols: "modbus/tcp,ftp,http,snmp", nics: 1, risk: 24, tags: []string{"modbus"}},
		{class: inventory.ClassPLC, vendor: "Rockwell Automation", short: "plc", segment: SegmentOT, weight: 0.3,
			sites:  []string{siteWarehouse, siteLab, sitePlant},
			models: []string{"Micro820 2080-LC20-20QWB", "Micro820 2080-LC20-20QBB"},
			ouis:   []string{"00:00:bc", "5c:88:16", "34:c0:f9"}, os: rtos, serial: serialRockwell,
			firmware: []firmware{
				{"12.011", "", "", 1, false},
				{"14.011", "", "", 2, false},
				{"21.011", "", "", 4, false},
				{"22.011", "", "", 5, false},
			},
			protocols: "ethernet/ip,modbus/tcp", nics: 1, risk: 20, tags: []string{"ethernet-ip"}},
		{class: inventory.ClassPLC, vendor: "Rockwell Automation", short: "plc", segment: SegmentOT, weight: 0.2,
			sites:  []string{sitePlant, siteLab},
			models: []string{"CompactLogix 5370 1769-L33ER", "CompactLogix 5370 1769-L30ER"},
			ouis:   []string{"00:00:bc", "5c:88:16"}, os: "VxWorks", serial: serialRockwell,
			firmware: []firmware{
				{"30.011", "6.9", "", 1, false},
				{"32.013", "6.9", "", 2, false},
				{"33.015", "6.9", "", 4, false},
				{"35.011", "6.9", "", 4, false},
			},
			protocols: "ethernet/ip,cip,http", nics: 2, risk: 21, tags: []string{"ethernet-ip"}},

		// Gateways and routers.
		{class: inventory.ClassRouter, vendor: "TP-Link", short: "rtr", segment: SegmentGuest, weight: 0.35,
			sites:  []string{siteWarehouse, siteLab, siteOffice, siteHQ},
			models: []string{"Archer AX21 v1.20"},
			ouis:   []string{"d0:37:45", "60:3a:7c", "54:a7:03", "b0:be:76"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"1.1.1 Build 20220408", "4.1.52", "1.19.4", 1, true},
				{"1.1.2 Build 20220714", "4.1.52", "1.19.4", 2, true},
				{"1.1.4 Build 20230219", "4.1.52", "1.19.4", 4, true},
			},
			protocols: "http,https,upnp,dhcp,dns", nics: 2, risk: 18, tags: []string{"wifi", "guest-wifi"}},
		{class: inventory.ClassRouter, vendor: "MikroTik", short: "rtr", segment: SegmentCorpIoT, weight: 0.45,
			models: []string{"hAP ac2 RBD52G-5HacD2HnD", "RB4011iGS+RM", "hEX S RB760iGS", "CCR2004-16G-2S+"},
			ouis:   []string{"b8:69:f4", "00:0c:42", "08:55:31", "6c:3b:6b"}, os: "RouterOS", serial: serialGeneric,
			firmware: []firmware{
				{"6.48.6", "6.48.6", "", 1, true},
				{"6.49.10", "6.49.10", "", 2, true},
				{"7.12.1", "7.12.1", "", 3, false},
				{"7.14.3", "7.14.3", "", 4, false},
				{"7.15.2", "7.15.2", "", 5, false},
			},
			protocols: "ssh,winbox,https,snmp", nics: 2, risk: 16, tags: []string{"branch-router"}},
		{class: inventory.ClassGateway, vendor: "Cisco", short: "gw", segment: SegmentOT, weight: 0.35,
			sites:  []string{sitePlant, siteWarehouse, siteLab, siteClinic},
			models: []string{"IR1101-K9", "IR1101-A-K9"},
			ouis:   []string{"f4:bd:9e", "08:4f:a9", "30:8b:b2"}, os: "Cisco IOS XE", serial: serialGeneric,
			firmware: []firmware{
				{"17.3.4a", "17.3.4a", "", 1, true},
				{"17.6.5", "17.6.5", "", 3, false},
				{"17.9.4a", "17.9.4a", "", 4, false},
				{"17.12.2", "17.12.2", "", 3, false},
			},
			protocols: "ssh,https,netconf,snmp", nics: 2, risk: 12, tags: []string{"cellular", "industrial"}},
		{class: inventory.ClassGateway, vendor: "Advantech", short: "gw", segment: SegmentOT, weight: 0.3,
			sites:  []string{sitePlant, siteWarehouse, siteLab},
			models: []string{"WISE-6610 LoRaWAN Gateway", "ICR-3241"},
			ouis:   []string{"74:fe:48", "00:d0:c9"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"V1.1.5", "4.9.88", "1.24.2", 1, false},
				{"V1.2.3", "4.14.98", "1.31.1", 3, false},
				{"V1.3.0", "4.14.98", "1.31.1", 4, false},
			},
			protocols: "https,ssh,mqtt,lorawan", nics: 2, risk: 14, tags: []string{"lorawan"}},
		{class: inventory.ClassGateway, vendor: "Moxa", short: "gw", segment: SegmentOT, weight: 0.25,
			sites:  []string{sitePlant, siteLab},
			models: []string{"NPort 5150", "NPort 5410"},
			ouis:   []string{"00:90:e8"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"3.9", "", "", 1, false},
				{"3.11", "", "", 2, false},
				{"3.14", "", "", 4, false},
			},
			protocols: "telnet,http,snmp,realcom", nics: 1, risk: 24, tags: []string{"serial-server"}},

		// Medical devices.
		{class: inventory.ClassMedical, vendor: "BD", short: "pump", segment: SegmentMedical, weight: 0.5,
			sites:  []string{siteClinic},
			models: []string{"Alaris 8015 PC Unit"},
			ouis:   []string{"9c:c8:ae", "f8:c6:78"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"9.19.2", "", "", 1, false},
				{"9.33.1", "", "", 3, false},
				{"12.1.2", "", "", 4, false},
			},
			protocols: "https,syslog", nics: 1, risk: 20, tags: []string{"infusion-pump", "wifi", "life-critical", "vendor-managed"}},
		{class: inventory.ClassMedical, vendor: "Philips", short: "mon", segment: SegmentMedical, weight: 0.35,
			sites:  []string{siteClinic},
			models: []string{"IntelliVue MX450", "IntelliVue MX800", "IntelliVue X3"},
			ouis:   []string{"00:09:5c"}, os: rtos, serial: serialGeneric,
			firmware: []firmware{
				{"L.01.11", "", "", 1, false},
				{"M.00.03", "", "", 3, false},
				{"N.00.03", "", "", 4, false},
			},
			protocols: "hl7,philips-data-export", nics: 1, risk: 18, tags: []string{"patient-monitor", "life-critical", "vendor-managed"}},
		{class: inventory.ClassMedical, vendor: "GE HealthCare", short: "mon", segment: SegmentMedical, weight: 0.15,
			sites:  []string{siteClinic},
			models: []string{"CARESCAPE B450", "CARESCAPE B650"},
			ouis:   []string{"44:4b:5d"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"2.0.5", "3.10.17", "1.22.1", 1, true},
				{"2.1.1", "3.10.17", "1.22.1", 3, true},
				{"3.0.2", "4.19.59", "1.31.1", 3, false},
			},
			protocols: "hl7,https", nics: 1, risk: 18, tags: []string{"patient-monitor", "life-critical", "vendor-managed"}},

		// Sensors.
		{class: inventory.ClassSensor, vendor: "Bosch", short: "sns", segment: SegmentOT, weight: 0.3,
			sites:  []string{sitePlant, siteLab, siteWarehouse},
			models: []string{"XDK110", "CISS Connected Industrial Sensor"},
			ouis:   []string{"a8:5b:6c", "bc:90:3a"}, os: "FreeRTOS", serial: serialGeneric,
			firmware: []firmware{
				{"3.5.0", "8.2.3", "", 1, true},
				{"3.6.0", "10.2.1", "", 3, false},
				{"3.6.1", "10.4.3", "", 4, false},
			},
			protocols: "mqtt,lwm2m", nics: 1, risk: 6, tags: []string{"vibration", "wifi"}},
		{class: inventory.ClassSensor, vendor: "Advantech", short: "sns", segment: SegmentOT, weight: 0.4,
			sites:  []string{sitePlant, siteLab, siteWarehouse},
			models: []string{"WISE-4012", "WISE-4050/LAN", "WISE-4220-S231"},
			ouis:   []string{"74:fe:48", "00:d0:c9"}, os: "FreeRTOS", serial: serialGeneric,
			firmware: []firmware{
				{"A1.15 B00", "9.0.0", "", 1, true},
				{"A2.02 B00", "10.2.1", "", 3, false},
				{"A2.04 B03", "10.4.3", "", 4, false},
			},
			protocols: "modbus/tcp,mqtt,http", nics: 1, risk: 10, tags: []string{"io-module"}},
		{class: inventory.ClassSensor, vendor: "Shelly", short: "sns", segment: SegmentBuildingAutomation, weight: 0.5,
			sites:  []string{siteHQ, siteClinic, siteOffice, siteLab},
			models: []string{"Plus H&T", "H&T Gen3"},
			ouis:   []string{"24:6f:28", "80:7d:3a", "24:0a:c4"}, os: "FreeRTOS (ESP-IDF)", serial: serialGeneric,
			firmware: []firmware{
				{"1.0.8", "4.4.4", "", 1, false},
				{"1.2.2", "4.4.6", "", 2, false},
				{"1.3.3", "5.1.2", "", 4, false},
			},
			protocols: "http,mqtt,coap", nics: 1, risk: 7, tags: []string{"wifi", "temperature"}},

		// Printers.
		{class: inventory.ClassPrinter, vendor: "HP", short: "prn", segment: SegmentCorpIoT, weight: 0.5,
			sites:  []string{siteHQ, siteClinic, siteOffice, siteLab, sitePlant},
			models: []string{"LaserJet Enterprise M507dn", "LaserJet Enterprise M611dn", "Color LaserJet Enterprise M554dn"},
			ouis:   []string{"04:0e:3c", "f8:0d:ac", "5c:60:ba"}, os: "HP FutureSmart", serial: serialHP,
			firmware: []firmware{
				{"2411177_043290", "4.11", "", 1, false},
				{"2505340_020052", "5.5", "", 3, false},
				{"2507252_023211", "5.7", "", 4, false},
			},
			protocols: "ipp,jetdirect,https,snmp", nics: 1, risk: 8, tags: []string{"mfp"}},
		{class: inventory.ClassPrinter, vendor: "HP", short: "prn", segment: SegmentCorpIoT, weight: 0.3,
			sites:  []string{siteHQ, siteOffice, siteClinic},
			models: []string{"Color LaserJet Pro MFP M479fdw"},
			ouis:   []string{"04:0e:3c", "f8:0d:ac"}, os: "HP proprietary", serial: serialHP,
			firmware: []firmware{
				{"002.2149A", "", "", 1, false},
				{"002.2307A", "", "", 3, false},
				{"002.2409A", "", "", 4, false},
			},
			protocols: "ipp,jetdirect,http,snmp", nics: 1, risk: 11, tags: []string{"mfp", "wifi"}},
		{class: inventory.ClassPrinter, vendor: "Zebra Technologies", short: "prn", segment: SegmentCorpIoT, weight: 0.8,
			sites:  []string{siteWarehouse, sitePlant},
			models: []string{"ZT411", "ZT410", "ZD621"},
			ouis:   []string{"00:07:4d", "84:24:8d", "94:fb:29"}, os: "Link-OS", serial: serialGeneric,
			firmware: []firmware{
				{"V75.20.01Z", "5.2", "", 1, false},
				{"V84.20.18Z", "6.4", "", 3, false},
				{"V92.21.31Z", "7.2", "", 4, false},
			},
			protocols: "zpl,http,snmp,ftp", nics: 1, risk: 10, tags: []string{"label-printer"}},

		// Smart locks and access control.
		{class: inventory.ClassLock, vendor: "SALTO Systems", short: "lock", segment: SegmentBuildingAutomation, weight: 0.5,
			models: []string{"CU4200 Control Unit", "XS4 Original+ (online)"},
			ouis:   []string{"00:0a:83"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"02.16", "4.9.11", "1.27.2", 1, false},
				{"03.01", "4.19.75", "1.31.1", 3, false},
				{"03.09", "4.19.75", "1.31.1", 4, false},
			},
			protocols: "https,salto-bluenet", nics: 1, risk: 9, tags: []string{"access-control"}},
		{class: inventory.ClassLock, vendor: "ASSA ABLOY", short: "lock", segment: SegmentBuildingAutomation, weight: 0.4,
			models: []string{"Aperio AH40 Hub", "Aperio H100"},
			ouis:   []string{"00:17:7a"}, os: "FreeRTOS", serial: serialGeneric,
			firmware: []firmware{
				{"1.5.2", "9.0.0", "", 1, true},
				{"1.7.3", "10.4.3", "", 4, false},
			},
			protocols: "rs485-bridge,https", nics: 1, risk: 9, tags: []string{"access-control"}},

		// Lighting.
		{class: inventory.ClassLighting, vendor: "Philips Hue", short: "light", segment: SegmentBuildingAutomation, weight: 1,
			models: []string{"Hue Bridge v2 BSB002"},
			ouis:   []string{"00:17:88", "ec:b5:fa"}, os: "Embedded Linux (OpenWrt)", serial: serialGeneric,
			firmware: []firmware{
				{"1.59.1959097030", "4.14.180", "1.28.4", 1, false},
				{"1.60.1960149090", "4.14.180", "1.28.4", 2, false},
				{"1.61.1961040030", "4.14.180", "1.28.4", 3, false},
				{"1.62.1962154010", "4.14.180", "1.28.4", 5, false},
			},
			protocols: "https,zigbee,mdns", nics: 1, risk: 8, tags: []string{"zigbee"}},

		// Displays.
		{class: inventory.ClassTV, vendor: "Samsung", short: "disp", segment: SegmentCorpIoT, weight: 0.7,
			models: []string{"QM55C Smart Signage", "QM43C Smart Signage"},
			ouis:   []string{"d0:d0:03", "8c:79:f5"}, os: "Tizen", serial: serialGeneric,
			firmware: []firmware{
				{"T-KTM2ELAKUC-2120.3", "6.5", "", 1, false},
				{"T-KTM2ELAKUC-2150.1", "6.5", "", 3, false},
				{"T-KTM2ELAKUC-2190.4", "7.0", "", 4, false},
			},
			protocols: "https,upnp,magicinfo", nics: 1, risk: 9, tags: []string{"signage"}},
		{class: inventory.ClassTV, vendor: "Google", short: "disp", segment: SegmentGuest, weight: 0.3,
			sites:  []string{siteHQ, siteOffice, siteClinic},
			models: []string{"Chromecast with Google TV (4K)"},
			ouis:   []string{"3c:5a:b4", "58:cb:52"}, os: "Android TV", serial: serialGeneric,
			firmware: []firmware{
				{"STTE.230319.008.R3", "12", "", 2, false},
				{"UTTK.240405.003", "14", "", 5, false},
			},
			protocols: "cast,mdns,https", nics: 1, risk: 7, tags: []string{"wifi", "meeting-room"}},

		// Other: desk phones.
		{class: inventory.ClassOther, vendor: "Yealink", short: "phone", segment: SegmentCorpIoT, weight: 1,
			models: []string{"SIP-T54W", "SIP-T46U", "CP965"},
			ouis:   []string{"24:9a:d8", "80:5e:c0", "00:15:65"}, os: embeddedLinux, serial: serialGeneric,
			firmware: []firmware{
				{"96.85.0.5", "3.10.14", "1.22.1", 1, true},
				{"96.86.0.70", "3.10.14", "1.22.1", 3, true},
				{"96.86.0.118", "4.9.75", "1.29.3", 4, false},
			},
			protocols: "sip,https,tftp", nics: 1, risk: 8, tags: []string{"voip", "poe"}},
	}
}
