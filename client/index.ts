export {
  RelaylogClient,
  type ClientOptions,
  type StartPosition,
  type TopicDescription,
  type PartitionInfo,
  type ReplicaProgress,
  type PartitionMembership,
  type ArchiveReport,
  type CompactReport,
  type ProduceResult,
  type ProduceStreamHandle,
  type ProduceStreamResult,
  type FetchResult,
  type Frame,
  type OffsetsResult,
} from './client.js';
export { RpcError, fromServiceError, isRetriable } from './errors.js';
export { Producer, type ProducerOptions, type SendBatch } from './producer.js';
export { ProducePipeline } from './pipeline.js';
export { Consumer, batchesOf, type ConsumerOptions } from './consumer.js';
