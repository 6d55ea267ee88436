import fs from 'node:fs';
import path from 'node:path';

/**
 * A sysfs tree as a box with sensors shows it: a CPU thermal hwmon, an SHT3x (temperature and
 * humidity) on hwmon, a BMP280 (pressure, temperature) and an LIS3DH accelerometer on IIO.
 * Values follow the kernel's sysfs ABI units (milli-degrees, milli-percent, kPa, raw × scale).
 */
export function writeFakeSysfs(root: string): void {
  const write = (file: string, text: string): void => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), `${text}\n`);
  };
  write('class/hwmon/hwmon0/name', 'cpu_thermal');
  write('class/hwmon/hwmon0/temp1_input', '48312');
  write('class/hwmon/hwmon1/name', 'sht3x');
  write('class/hwmon/hwmon1/temp1_input', '31250');
  write('class/hwmon/hwmon1/temp1_label', 'cabinet');
  write('class/hwmon/hwmon1/humidity1_input', '64500');
  write('bus/iio/devices/iio:device0/name', 'bmp280');
  write('bus/iio/devices/iio:device0/in_pressure_input', '101.325');
  write('bus/iio/devices/iio:device0/in_temp_input', '29870');
  write('bus/iio/devices/iio:device1/name', 'lis3dh');
  write('bus/iio/devices/iio:device1/in_accel_x_raw', '16');
  write('bus/iio/devices/iio:device1/in_accel_y_raw', '-32');
  write('bus/iio/devices/iio:device1/in_accel_z_raw', '1024');
  write('bus/iio/devices/iio:device1/in_accel_scale', '0.009576');
  // A trigger, not a sensor: skipped.
  write('bus/iio/devices/trigger0/name', 'lis3dh-trigger');
}
