import './style.css'
import { landingPage } from './landing'
import { roomPage } from './room'
import { gridPage } from './grid'
import { settings } from './settings'

// The theme chosen in the editor settings (or the system's) on every page, before drawing.
settings()
const app = document.getElementById('app')!
const match = window.location.pathname.match(/^\/r\/([A-Za-z0-9._-]{1,128})\/?$/)
const grid = window.location.pathname.match(/^\/x\/([A-Za-z0-9_-]{1,128})\/?$/)
const page = match ? roomPage(app, decodeURIComponent(match[1])) : grid ? gridPage(app, grid[1]) : landingPage(app)
page.catch((err: unknown) => {
  console.error(err)
  app.textContent = `Something went wrong: ${String(err)}`
})
