"""NVMe 1.x, as far as the P3700 model and its driver use it.

Registers are int64 word indices of the MMIO region (the model's register file),
not the specification's byte offsets; commands and completions are the
specification's 64- and 16-byte entries.
"""
import numpy as np

# controller registers and the doorbells of the admin queue (0) and one I/O queue pair (1)
(CAP, VS, CC, CSTS, AQA, ASQ, ACQ, SQ0TDBL, CQ0HDBL, SQ1TDBL, CQ1HDBL) = range(11)
NREGS = 11                  # what a driver may see of the register file
CC_EN, CSTS_RDY, CSTS_CFS = 1, 1, 1 << 1    # CSTS.CFS: controller fatal status

OP_WRITE, OP_READ = 0x01, 0x02                               # I/O commands
ADMIN_CREATE_SQ, ADMIN_CREATE_CQ, ADMIN_IDENTIFY = 0x01, 0x05, 0x06
SC_SUCCESS, SC_INVALID_OPCODE, SC_LBA_RANGE = 0x0, 0x1, 0x80  # completion status codes
SC_DATA_TRANSFER_ERROR = 0x4

# a submission entry: CDW0 = opcode | command id << 16, NSID; PRP1; CDW10-11 = the
# starting LBA, CDW12 = number of LBAs - 1
SQE = np.dtype([("cdw0_nsid", np.uint64), ("cdw2_3", np.uint64), ("mptr", np.uint64),
                ("prp1", np.uint64), ("prp2", np.uint64), ("cdw10_11", np.uint64),
                ("cdw12_13", np.uint64), ("cdw14_15", np.uint64)])
# a completion entry: DW0-1 command specific; DW2 = SQ head | SQ id << 16;
# DW3 = command id | phase << 16 | status << 17
CQE = np.dtype([("dw0_1", np.uint64), ("dw2_3", np.uint64)])
SQE_WORDS, CQE_WORDS = SQE.itemsize // 8, CQE.itemsize // 8
PHASE_SHIFT, STATUS_SHIFT = 16, 17          # in DW3

BSIZE, LBA_BYTES = 4096, 512
LBAS_PER_BLOCK = BSIZE // LBA_BYTES
