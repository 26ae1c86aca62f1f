/* Records of the all-types schema (tests/tool/tool_schema.h) as `shmbus pub`
 * takes them, and as tail and `dlq show` decode them back. */
#ifndef SHMBUS_TEST_TOOL_RECORDS_H
#define SHMBUS_TEST_TOOL_RECORDS_H

extern const char rec_a[], rec_a_decoded[], rec_b[], rec_b_decoded[];

#endif
