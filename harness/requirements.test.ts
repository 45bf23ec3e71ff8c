import { describe, expect, it } from 'vitest'
import { missingRequirement, UnknownRequirementError, findOnPath } from './requirements.ts'
import { validateScenarioMeta, scenarioNameOf } from './scenario-meta.ts'

describe('requirements', () => {
  it('reports the first missing requirement as a skip reason', () => {
    expect(missingRequirement([], {})).toBeNull()
    expect(missingRequirement(['kvm', 'containerd'], { KATAREF_ASSUME_MISSING: 'containerd, kvm' })).toBe('skipped: missing kvm: KATAREF_ASSUME_MISSING lists it')
  })
  it('fails on an unknown requirement instead of skipping', () => {
    expect(() => missingRequirement(['qemu', 'warp-drive'], {})).toThrow(UnknownRequirementError)
    expect(() => missingRequirement(['warp-drive'], {})).toThrow(/unknown requirement 'warp-drive' \(known: qemu, kvm, containerd, root\)/)
  })
  it('finds executables on PATH', () => {
    expect(findOnPath('node')).toMatch(/node$/)
    expect(findOnPath('surely-not-a-binary-kataref')).toBeNull()
  })
})

describe('scenario metadata', () => {
  it('validates name, upstream change and gap lines', () => {
    expect(validateScenarioMeta({ name: 'agent-health', upstream: ' kata agent: health ' })).toEqual({ name: 'agent-health', upstream: 'kata agent: health', requires: [] })
    expect(() => validateScenarioMeta({ name: 'Agent_Health', upstream: 'x' })).toThrow(/not kebab-case/)
    expect(() => validateScenarioMeta({ name: 'a', upstream: '' })).toThrow(/'upstream'/)
    expect(() => validateScenarioMeta({ name: 'a', upstream: 'x', gap: { upstream: 'u', kataref: '' } })).toThrow(/both 'upstream' and 'kataref'/)
  })
  it('derives the scenario name from the file name', () => {
    expect(scenarioNameOf('/x/scenarios/guest-boot.scenario.ts')).toBe('guest-boot')
  })
})
