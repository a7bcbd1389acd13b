/* Test stub: the parts of <zephyr/drivers/gpio.h> zephyr_app/src/main.c uses (energy mode). */
#ifndef TE_STUB_ZEPHYR_DRIVERS_GPIO_H_
#define TE_STUB_ZEPHYR_DRIVERS_GPIO_H_
#include <stdbool.h>
#include <stdint.h>

#include <zephyr/device.h>

typedef uint8_t gpio_pin_t;
typedef uint16_t gpio_dt_flags_t;
typedef uint32_t gpio_flags_t;
struct gpio_dt_spec {
	const struct device *port;
	gpio_pin_t pin;
	gpio_dt_flags_t dt_flags;
};
#define GPIO_OUTPUT_HIGH ((gpio_flags_t)0x0e00u)
extern const struct device te_stub_gpio_device;
#define GPIO_DT_SPEC_GET(node, prop) {&te_stub_gpio_device, 13u, 0u}
bool gpio_is_ready_dt(const struct gpio_dt_spec *spec);
int gpio_pin_configure_dt(const struct gpio_dt_spec *spec, gpio_flags_t extra_flags);
int gpio_pin_set_raw(const struct device *port, gpio_pin_t pin, int value);
#endif
