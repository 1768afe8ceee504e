/** Rooms this browser created (with their owner links), so an owner can find them again. */
import type { Mode, RoomCreated } from './api'

export interface RecentRoom {
  room: string
  mode: Mode
  title: string
  links: Record<string, string>
  created: number
}

const KEY = 'codementor.rooms'

export function recentRooms(): RecentRoom[] {
  try {
    const rooms = JSON.parse(localStorage.getItem(KEY) ?? '[]') as RecentRoom[]
    return Array.isArray(rooms) ? rooms : []
  } catch {
    return []
  }
}

export function rememberRoom(created: RoomCreated, mode: Mode, title: string): void {
  const rooms = recentRooms().filter((r) => r.room !== created.room)
  rooms.unshift({ room: created.room, mode, title, links: created.links, created: Date.now() })
  localStorage.setItem(KEY, JSON.stringify(rooms.slice(0, 20)))
}

export function forgetRoom(room: string): void {
  localStorage.setItem(KEY, JSON.stringify(recentRooms().filter((r) => r.room !== room)))
}

export function findRecent(room: string): RecentRoom | null {
  return recentRooms().find((r) => r.room === room) ?? null
}

/** The owner rotated the room's links: keep the new ones (only for rooms listed here). */
export function replaceRecentLinks(room: string, links: Record<string, string>): void {
  const rooms = recentRooms()
  const found = rooms.find((r) => r.room === room)
  if (!found) return
  found.links = links
  localStorage.setItem(KEY, JSON.stringify(rooms))
}
