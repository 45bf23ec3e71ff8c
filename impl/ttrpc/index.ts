// kataref ttrpc: unary ttrpc client and server over any Node Duplex (see PROTOCOL.md).
export { TtrpcClient, createServiceClient, type TtrpcClientOptions } from './client.ts'
export { TtrpcServer, ServerConnection, type TtrpcServerOptions } from './server.ts'
export { Code, codeName, isNotSupported } from './codes.ts'
export { TtrpcError, TtrpcClosedError, FrameTooLargeError, CLOSED_MESSAGE, toStatus, type WireStatus } from './errors.ts'
export {
  FrameDecoder, encodeFrame, encodeHeader, decodeHeader, HEADER_LENGTH, MAX_MESSAGE_LENGTH, MessageType, Flag,
  type Frame, type FrameHeader, type DecodedItem, type FrameDecoderOptions,
} from './frame.ts'
export type {
  CallContext, CallOptions, Metadata, MethodHandler, MethodName, RequestInit, RequestShape, ResponseInit, ResponseShape,
  ServiceClient, ServiceImpl,
} from './service-types.ts'
export { createDuplexPair } from './duplex-pair.ts'
