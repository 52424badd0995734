"""The Intel 82599 10 GbE controller, as far as the model and its driver use it.

Registers are int64 word indices of the MMIO region (the model's register file),
not the datasheet's byte offsets; bits and descriptor layouts are the datasheet's.
"""
import numpy as np

# registers (datasheet names)
(CTRL, STATUS, RXCTRL, RDBAL, RDBAH, RDLEN, RDH, RDT, RXDCTL,
 TDBAL, TDBAH, TDLEN, TDH, TDT, TXDCTL, GPRC, GPTC, GORC, GOTC, MPC, TXERR) = range(21)
NREGS = 21                  # what a driver may see of the register file

CTRL_RST = 1 << 26          # CTRL: device reset (self-clearing)
STATUS_LU = 1 << 1          # STATUS: link up
RXCTRL_RXEN = 1             # RXCTRL: receive enable
DCTL_ENABLE = 1 << 25       # RXDCTL / TXDCTL: queue enable

# 16-byte advanced descriptors, as two 64-bit words. RX read format {pkt_addr,
# hdr_addr}; RX write-back {pkt_info, status_error | length << 32}. TX read
# format {buffer_addr, cmd_type_len | olinfo_status << 32}; TX write-back sets DD
# in the status field (bit 32 of the second word).
DESCRIPTOR = np.dtype([("addr", np.uint64), ("info", np.uint64)])
DESC_BYTES = DESCRIPTOR.itemsize
RXD_DD, RXD_EOP = 1, 2                       # RX write-back status (low bits of info)
TXD_DD = 1                                   # TX write-back status (info >> 32)
TXD_EOP, TXD_IFCS, TXD_RS = 1 << 24, 1 << 25, 1 << 27
TXD_DEXT, TXD_DTYP_DATA = 1 << 29, 3 << 20
TXD_CMD = TXD_EOP | TXD_IFCS | TXD_RS | TXD_DEXT | TXD_DTYP_DATA
TXD_PAYLEN_SHIFT = 14                        # olinfo_status: payload length
