export { KafkaListener, type KafkaListenerOptions } from './listener.js';
export { kafkaLimits, type KafkaLimits } from './limits.js';
