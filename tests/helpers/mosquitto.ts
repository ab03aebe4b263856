export { Mosquitto, freePort } from '../../bench/mosquitto.js';
