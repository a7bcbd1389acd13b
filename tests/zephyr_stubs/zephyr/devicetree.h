/* Test stub: <zephyr/devicetree.h>; the overlay's chosen node is "present". */
#ifndef TE_STUB_ZEPHYR_DEVICETREE_H_
#define TE_STUB_ZEPHYR_DEVICETREE_H_
#define DT_HAS_CHOSEN(prop) DT_STUB_HAS_##prop
#define DT_STUB_HAS_tinyengine_uart 1
#define DT_STUB_HAS_zephyr_console 1
#define DT_CHOSEN(prop) DT_STUB_NODE_##prop
/* Energy mode's alias tinyengine-timestamp "exists" (mlperf_timestamp.overlay). */
#define DT_ALIAS(alias) DT_STUB_ALIAS_##alias
#define DT_STUB_CAT2(a, b) a##b
#define DT_STUB_CAT(a, b) DT_STUB_CAT2(a, b)
#define DT_NODE_EXISTS(node) DT_STUB_CAT(DT_STUB_EXISTS_, node)
#define DT_STUB_EXISTS_DT_STUB_ALIAS_tinyengine_timestamp 1
#endif
