// Compile-time checks of the typed API (checked by `tsc --noEmit`), plus metadata normalisation.
import { describe, expect, expectTypeOf, it } from 'vitest'
import type { Empty } from '@bufbuild/protobuf/wkt'
import { AgentService, type CreateSandboxRequest, type WaitProcessResponse } from '../gen/agent_pb.ts'
import type { Interface } from '../gen/types_pb.ts'
import { createServiceClient, type TtrpcClient } from './client.ts'
import { normalizeMetadata, type CallContext, type MethodName, type RequestShape, type ResponseShape, type ServiceImpl } from './service-types.ts'

describe('typed service API', () => {
  it('derives request/response shapes and method names from the generated service', () => {
    expectTypeOf<RequestShape<typeof AgentService, 'createSandbox'>>().toEqualTypeOf<CreateSandboxRequest>()
    expectTypeOf<ResponseShape<typeof AgentService, 'createSandbox'>>().toEqualTypeOf<Empty>()
    expectTypeOf<ResponseShape<typeof AgentService, 'updateInterface'>>().toEqualTypeOf<Interface>()
    expectTypeOf<'waitProcess'>().toMatchTypeOf<MethodName<typeof AgentService>>()
    expectTypeOf<ServiceImpl<typeof AgentService>['waitProcess']>().parameters.toEqualTypeOf<[RequestShape<typeof AgentService, 'waitProcess'>, CallContext]>()
    const typedClient = (c: TtrpcClient) => createServiceClient(AgentService, c)
    expectTypeOf<ReturnType<ReturnType<typeof typedClient>['waitProcess']>>().toEqualTypeOf<Promise<WaitProcessResponse>>()
    expect(AgentService.methods).toHaveLength(42)
  })

  it('normalises metadata records and pair lists to ordered pairs', () => {
    expect(normalizeMetadata(undefined)).toEqual([])
    expect(normalizeMetadata([['a', '1'], ['a', '2']])).toEqual([['a', '1'], ['a', '2']])
    expect(normalizeMetadata({ a: '1', b: ['2', '3'] })).toEqual([['a', '1'], ['b', '2'], ['b', '3']])
  })
})
