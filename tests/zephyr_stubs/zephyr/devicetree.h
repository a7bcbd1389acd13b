/* Test stub: <zephyr/devicetree.h>; the overlay's chosen node is "present". */
#ifndef TE_STUB_ZEPHYR_DEVICETREE_H_
#define TE_STUB_ZEPHYR_DEVICETREE_H_
#define DT_HAS_CHOSEN(prop) DT_STUB_HAS_##prop
#define DT_STUB_HAS_tinyengine_uart 1
#define DT_STUB_HAS_zephyr_console 1
#define DT_CHOSEN(prop) DT_STUB_NODE_##prop
#endif
